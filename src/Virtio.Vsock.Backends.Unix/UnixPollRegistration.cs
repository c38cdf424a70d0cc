using System.Runtime.InteropServices;

namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// One socket registered with a <see cref="UnixReadinessPoller"/>: one-shot requests for
/// "tell me once when readable / writable". Owns a reference on the socket's handle (so its
/// descriptor number cannot be reused while registered) and the socket's entry in the poller's
/// epoll set. It must never block and never deliver a readiness that was not requested; after
/// <see cref="Dispose"/> no new callback starts (one already running on the poller thread may
/// finish).
/// </summary>
internal sealed class UnixPollRegistration : IDisposable
{
    private readonly UnixReadinessPoller _poller;
    private readonly SafeHandle _handle;
    private readonly Action<UnixReadiness> _callback;
    private readonly object _lock = new();
    private UnixReadiness _interest;
    private bool _disposed;

    internal UnixPollRegistration(UnixReadinessPoller poller, SafeHandle handle, ulong id, Action<UnixReadiness> callback)
    {
        _poller = poller;
        _handle = handle;
        Id = id;
        _callback = callback;
    }

    internal ulong Id { get; }

    internal nint Fd => _handle.DangerousGetHandle();

    /// <summary>What has been requested and not yet delivered.</summary>
    public UnixReadiness Pending
    {
        get
        {
            lock (_lock)
            {
                return _interest;
            }
        }
    }

    /// <summary>Asks for one callback with <see cref="UnixReadiness.Readable"/> when the socket is readable (at once if it already is).</summary>
    /// <returns>Ok, or why the request could not be armed (SocketClosed after dispose).</returns>
    public UnixIoResult RequestReadable() => Request(UnixReadiness.Readable);

    /// <summary>Asks for one callback with <see cref="UnixReadiness.Writable"/> when the socket is writable (at once if it already is).</summary>
    /// <returns>Ok, or why the request could not be armed (SocketClosed after dispose).</returns>
    public UnixIoResult RequestWritable() => Request(UnixReadiness.Writable);

    /// <summary>Removes the socket from the poller and releases the handle reference. Idempotent.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _interest = UnixReadiness.None;
            _poller.Remove(this);
        }

        _handle.DangerousRelease();
    }

    private UnixIoResult Request(UnixReadiness readiness)
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return UnixIoResult.Failure(UnixIoStatus.SocketClosed, 0);
            }

            UnixReadiness wanted = _interest | readiness;
            int error = _poller.Arm(this, wanted);
            if (error != 0)
            {
                return UnixIoResult.FromErrno(error);
            }

            _interest = wanted;
            return UnixIoResult.Success(0);
        }
    }

    /// <summary>Called on the poller thread with the raw epoll events.</summary>
    internal void OnEvents(uint events)
    {
        UnixReadiness ready = UnixReadiness.None;
        if ((events & (UnixNative.EpollIn | UnixNative.EpollErr | UnixNative.EpollHup | UnixNative.EpollRdHup)) != 0)
        {
            ready |= UnixReadiness.Readable;
        }

        if ((events & (UnixNative.EpollOut | UnixNative.EpollErr | UnixNative.EpollHup)) != 0)
        {
            ready |= UnixReadiness.Writable;
        }

        UnixReadiness fired;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            fired = ready & _interest;
            _interest &= ~fired;
            if (_interest != UnixReadiness.None)
            {
                // One-shot disarmed the whole entry: re-arm what is still wanted.
                _poller.Arm(this, _interest);
            }
        }

        if (fired != UnixReadiness.None)
        {
            try
            {
                _callback(fired);
            }
            catch (Exception)
            {
                // A handler must not take the poller thread down.
            }
        }
    }
}
