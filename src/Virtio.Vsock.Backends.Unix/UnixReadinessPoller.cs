using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// Tells the engine when host sockets become readable or writable, for
/// <c>RequestReadable</c> / <c>RequestWritable</c>-style one-shot notifications: one dedicated thread
/// blocked in <c>epoll_wait</c> for all registered sockets (level-triggered, one-shot), so an idle
/// backend uses no CPU and nothing spins on EPOLLIN / EPOLLOUT. Owns the epoll instance, a wake-up
/// eventfd, the thread and the table of registrations. It must never block a caller (registering
/// and arming are single <c>epoll_ctl</c> calls), never run a callback that was not requested, and
/// never let a callback's exception stop it. Callbacks run on the poller thread and must not block.
/// </summary>
/// <remarks>
/// The runtime's own socket engine exposes no write readiness; this fills that gap (and can serve
/// read readiness too, instead of <see cref="UnixSocketIo.WaitReadableAsync"/>). A socket may be in
/// the runtime's epoll set and in this one at the same time.
/// </remarks>
internal sealed class UnixReadinessPoller : IDisposable
{
    private const int MaxEvents = 64;
    private const ulong WakeId = 0;

    private readonly int _epoll;
    private readonly int _wake;
    private readonly Thread _thread;
    private readonly Dictionary<ulong, UnixPollRegistration> _registrations = [];
    private ulong _nextId = WakeId;
    private volatile bool _stopping;
    private bool _closed;
    private int _disposed;

    /// <summary>Creates the epoll instance and starts the poller thread.</summary>
    /// <param name="threadName">The thread's name (for debuggers and <c>top -H</c>).</param>
    /// <exception cref="PlatformNotSupportedException">Not 64-bit Linux.</exception>
    /// <exception cref="IOException">epoll or eventfd could not be created (out of descriptors).</exception>
    public UnixReadinessPoller(string threadName = "vsock-unix-poll")
    {
        if (!UnixNative.IsSupported)
        {
            throw new PlatformNotSupportedException("UnixReadinessPoller needs 64-bit Linux.");
        }

        _epoll = UnixNative.EpollCreate1(UnixNative.EpollCloexec);
        if (_epoll < 0)
        {
            throw new IOException($"epoll_create1 failed: errno {Marshal.GetLastPInvokeError()}.");
        }

        _wake = UnixNative.EventFd(0, UnixNative.EfdCloexec | UnixNative.EfdNonBlock);
        int error = _wake < 0 ? Marshal.GetLastPInvokeError() : UnixNative.EpollControl(_epoll, UnixNative.EpollCtlAdd, _wake, UnixNative.EpollIn, WakeId);
        if (error != 0)
        {
            if (_wake >= 0)
            {
                UnixNative.Close(_wake);
            }

            UnixNative.Close(_epoll);
            throw new IOException($"eventfd setup failed: errno {error}.");
        }

        _thread = new Thread(Run) { IsBackground = true, Name = threadName };
        _thread.Start();
    }

    /// <summary>Registrations currently held.</summary>
    public int Count
    {
        get
        {
            lock (_registrations)
            {
                return _registrations.Count;
            }
        }
    }

    /// <summary>
    /// Registers a socket (disarmed). Dispose the registration before disposing the socket.
    /// </summary>
    /// <param name="socket">A socket (any Unix socket; the poller never reads or writes it).</param>
    /// <param name="callback">Called on the poller thread with what became ready, once per request. Must not block.</param>
    /// <param name="registration">The registration, or null on failure.</param>
    /// <returns>Ok, or SocketClosed / the epoll_ctl failure.</returns>
    public UnixIoResult TryRegister(Socket socket, Action<UnixReadiness> callback, out UnixPollRegistration? registration)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(callback);
        registration = null;
        if (Volatile.Read(ref _disposed) != 0)
        {
            return UnixIoResult.Failure(UnixIoStatus.SocketClosed, 0);
        }

        SafeHandle handle = socket.SafeHandle;
        bool added = false;
        try
        {
            if (!handle.IsClosed)
            {
                handle.DangerousAddRef(ref added);
            }
        }
        catch (ObjectDisposedException)
        {
        }

        if (!added)
        {
            return UnixIoResult.Failure(UnixIoStatus.SocketClosed, 0);
        }

        ulong id = Interlocked.Increment(ref _nextId);
        var created = new UnixPollRegistration(this, handle, id, callback);
        lock (_registrations)
        {
            _registrations.Add(id, created);
        }

        int error = UnixNative.EpollControl(_epoll, UnixNative.EpollCtlAdd, created.Fd, UnixNative.EpollOneShot, id);
        if (error != 0)
        {
            lock (_registrations)
            {
                _registrations.Remove(id);
            }

            handle.DangerousRelease();
            return UnixIoResult.FromErrno(error);
        }

        registration = created;
        return UnixIoResult.Success(0);
    }

    /// <summary>Stops the thread (waits up to 5 s unless called from a callback), releases every registration and closes the epoll instance.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stopping = true;
        Wake();
        if (Thread.CurrentThread != _thread)
        {
            _thread.Join(TimeSpan.FromSeconds(5));
        }

        UnixPollRegistration[] remaining;
        lock (_registrations)
        {
            remaining = [.. _registrations.Values];
        }

        foreach (UnixPollRegistration registration in remaining)
        {
            registration.Dispose();
        }

        lock (_registrations)
        {
            // From here on a late registration Dispose must not touch the (reusable) descriptor numbers.
            _closed = true;
        }

        UnixNative.Close(_wake);
        UnixNative.Close(_epoll);
    }

    internal int Arm(UnixPollRegistration registration, UnixReadiness interest)
    {
        uint events = UnixNative.EpollOneShot;
        if ((interest & UnixReadiness.Readable) != 0)
        {
            events |= UnixNative.EpollIn | UnixNative.EpollRdHup;
        }

        if ((interest & UnixReadiness.Writable) != 0)
        {
            events |= UnixNative.EpollOut;
        }

        return UnixNative.EpollControl(_epoll, UnixNative.EpollCtlMod, registration.Fd, events, registration.Id);
    }

    internal void Remove(UnixPollRegistration registration)
    {
        lock (_registrations)
        {
            _registrations.Remove(registration.Id);
            if (!_closed)
            {
                UnixNative.EpollControl(_epoll, UnixNative.EpollCtlDel, registration.Fd, 0, 0);
            }
        }
    }

    private unsafe void Wake()
    {
        ulong one = 1;
        UnixNative.Write(_wake, (byte*)&one, sizeof(ulong));
    }

    private unsafe void Run()
    {
        byte* events = stackalloc byte[MaxEvents * 16];
        int size = UnixNative.EpollEventSize;
        int dataOffset = UnixNative.EpollDataOffset;
        while (!_stopping)
        {
            int count = UnixNative.EpollWait(_epoll, events, MaxEvents, -1);
            if (count < 0)
            {
                int error = Marshal.GetLastPInvokeError();
                if (error == UnixNative.EINTR)
                {
                    continue;
                }

                return;
            }

            for (int i = 0; i < count && !_stopping; i++)
            {
                byte* ev = events + (i * size);
                uint flags = *(uint*)ev;
                ulong id = *(ulong*)(ev + dataOffset);
                if (id == WakeId)
                {
                    ulong value;
                    UnixNative.Read(_wake, (byte*)&value, sizeof(ulong));
                    continue;
                }

                UnixPollRegistration? registration;
                lock (_registrations)
                {
                    _registrations.TryGetValue(id, out registration);
                }

                registration?.OnEvents(flags);
            }
        }
    }
}
