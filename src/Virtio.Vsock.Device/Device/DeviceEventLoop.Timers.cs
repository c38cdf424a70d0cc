using System.Diagnostics;

namespace Virtio.Vsock.Device;

/// <summary>
/// Backends' timers on the <see cref="DeviceEventLoop"/> (<see cref="IVsockFdPoller.CreateTimer"/>): one
/// <see cref="DeadlineQueue{T}"/> touched only by the loop thread, whose nearest deadline bounds the loop's
/// <c>epoll_wait</c> together with the device's own. Must never: run a due timer off the loop, run timers without
/// bound in one turn (a handler that re-arms itself for "now" runs again next turn, after the descriptors), or stop
/// running them because the device's turn faulted (they serve the backend, not the device).
/// </summary>
internal sealed partial class DeviceEventLoop
{
    private readonly DeadlineQueue<LoopTimer> _timers = new(static (timer, deadline) => !timer.IsDisposed && timer.Deadline == deadline);
    private int _liveTimers;

    /// <inheritdoc/>
    public IVsockTimer CreateTimer(IVsockTimerHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        Interlocked.Increment(ref _liveTimers);
        return new LoopTimer(this, handler);
    }

    /// <summary>Queues a timer entry (any thread: from another thread it is handed over as a control action).</summary>
    /// <returns>False when the loop stopped.</returns>
    internal bool AddTimer(LoopTimer timer, long deadline)
    {
        if (IsLoopThread)
        {
            _timers.Add(timer, deadline, Volatile.Read(ref _liveTimers));
            return true;
        }

        if (_stopping)
        {
            return false;
        }

        Post(() => _timers.Add(timer, deadline, Volatile.Read(ref _liveTimers)));
        return true;
    }

    /// <summary>A timer was disposed (any thread): its entries become stale and may be swept.</summary>
    internal void OnTimerDisposed() => Interlocked.Decrement(ref _liveTimers);

    /// <summary>Runs the due timers, at most as many as were queued when the run began (on the loop).</summary>
    private void RunTimers()
    {
        int budget = _timers.Count;
        if (budget == 0)
        {
            return;
        }

        long now = Stopwatch.GetTimestamp();
        while (budget-- > 0 && _timers.TryTakeDue(now, out LoopTimer timer))
        {
            timer.Fire(now);
        }
    }
}
