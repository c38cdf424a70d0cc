using System.Diagnostics;

namespace Virtio.Vsock.Device;

/// <summary>
/// A backend's timer on a <see cref="DeviceEventLoop"/> (<see cref="IVsockFdPoller.CreateTimer"/>): a deadline the
/// loop keeps in its timer queue and waits for as part of its <c>epoll_wait</c> timeout.
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> its current deadline (<see cref="long.MaxValue"/> when unarmed) and the disposed flag.
/// <b>Must never:</b> run its handler off the loop, run it twice for one arming, run it after <see cref="Dispose"/>
/// returned on the loop thread, or let the handler's exception escape into the loop.</para>
/// <para><b>Threading:</b> arming, cancelling and disposing may come from any thread; the deadline is one word
/// changed with interlocked operations, and the loop fires only by swapping the deadline it saw for "unarmed", so a
/// concurrent re-arm wins over a stale firing. Queue entries whose deadline no longer matches are stale and skipped
/// (see <see cref="DeadlineQueue{T}"/>).</para>
/// </remarks>
internal sealed class LoopTimer : IVsockTimer
{
    private readonly DeviceEventLoop _loop;
    private readonly IVsockTimerHandler _handler;
    private long _deadline = long.MaxValue;
    private int _disposed;

    internal LoopTimer(DeviceEventLoop loop, IVsockTimerHandler handler)
    {
        _loop = loop;
        _handler = handler;
    }

    /// <summary>The armed deadline, or <see cref="long.MaxValue"/>.</summary>
    internal long Deadline => Volatile.Read(ref _deadline);

    /// <summary>Whether <see cref="Dispose"/> was called.</summary>
    internal bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <inheritdoc/>
    public bool Schedule(long deadline)
    {
        if (IsDisposed || _loop.IsStopping)
        {
            return false;
        }

        deadline = Math.Min(deadline, long.MaxValue - 1);
        Interlocked.Exchange(ref _deadline, deadline);
        return _loop.AddTimer(this, deadline);
    }

    /// <inheritdoc/>
    public void Cancel() => Interlocked.Exchange(ref _deadline, long.MaxValue);

    /// <summary>Disarms the timer for good. Idempotent; any thread.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Cancel();
            _loop.OnTimerDisposed();
        }
    }

    /// <summary>The loop found this timer due at <paramref name="now"/>: runs the handler unless it was re-armed or
    /// cancelled meanwhile (on the loop).</summary>
    internal void Fire(long now)
    {
        long deadline = Deadline;
        if (deadline > now || IsDisposed || Interlocked.CompareExchange(ref _deadline, long.MaxValue, deadline) != deadline)
        {
            return;
        }

        try
        {
            _handler.OnTimer();
        }
        catch (Exception exception)
        {
            try
            {
                _handler.OnTimerFault(exception);
            }
            catch (Exception second)
            {
                Trace.TraceError("vsock device loop: a timer's handler failed twice: {0}", second);
            }
        }
    }
}
