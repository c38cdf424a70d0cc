using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Virtio.Vsock;

namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// Listens on a Unix socket for host-initiated hybrid-vsock connections (Firecracker /
/// vhost-device-vsock compatible), reads each one's <c>CONNECT &lt;port&gt;\n</c> line under a
/// deadline, and queues the good ones as <see cref="HostConnectRequest"/>s for the engine. Owns the
/// listening socket, its socket file, the sockets of handshakes in progress and of queued requests.
/// It must never crash or stop serving because of one host peer (malformed, oversized, silent or
/// vanishing peers are closed and counted; an exception in one accept or handshake closes that socket only),
/// never block or loop without bound on the device loop, and never hold unbounded memory
/// (at most <see cref="HybridVsockListenerOptions.MaxPendingHandshakes"/> handshakes with a 32-byte
/// buffer each, at most <see cref="HybridVsockListenerOptions.MaxQueuedRequests"/> queued requests;
/// beyond that, connections wait in the kernel backlog).
/// </summary>
/// <remarks>
/// <para><b>Everything runs on the device loop</b> once <see cref="Attach"/> handed it the loop
/// (<see cref="IVsockBackendHost.FdPoller"/>): the listening socket is one watched descriptor; on readiness the
/// loop takes up to <see cref="AcceptsPerPass"/> connections with <c>accept4</c> (non-blocking, close-on-exec) and
/// comes back for more on its next turn, after other work (fairness); each connection's handshake
/// (<see cref="HostHandshake"/>) reads on the loop and its deadline is a loop timer. When
/// <see cref="HybridVsockListenerOptions.MaxPendingHandshakes"/> connections are pending the listener stops
/// accepting (and stops asking for readability) until one finishes; further connections wait in the kernel
/// backlog. Failed <c>accept()</c> calls are counted; running out of descriptors or memory backs off on a loop
/// timer (10 ms doubling to 1 s) instead of spinning. A complete request is queued and
/// <see cref="HybridVsockListenerOptions.RequestQueued"/> is called on the loop, so the engine can start the
/// guest connect in the same turn.</para>
/// <para><b>Before <see cref="Attach"/></b> (the backend started before its device exists, or a listener used
/// alone) the socket listens but nothing accepts: connections wait in the kernel backlog (connecting succeeds
/// while it has room) and are served once a loop is attached. Attaching again (another device) moves the
/// listening socket to the new loop.</para>
/// <para>Paths (see <see cref="UnixBackendPaths"/>): the SOCK_STREAM listener binds <c>uds_path</c>;
/// a SOCK_SEQPACKET listener is a second instance, by convention at <c>uds_path.seqpacket</c>
/// (<see cref="UnixBackendPaths.SeqPacketListenerPath"/>). Over SOCK_SEQPACKET the first message
/// must be exactly the line <c>CONNECT &lt;port&gt;\n</c> (no bytes after the <c>\n</c>), and the
/// reply <c>OK &lt;local_port&gt;\n</c> is one message.</para>
/// <para>Start: an existing socket file at the path is probed with a connect. If a live process
/// listens there (connect succeeds, its backlog is full, or it listens with the other socket type)
/// the listener refuses to start (that process sees one connection open and close); a stale socket
/// file (connection refused) is removed and replaced; anything that is not a socket is never
/// removed. On dispose the socket file is removed if it is still the one this listener created.</para>
/// <para>At most 32 bytes are read from a stream connection before the line completes, so at
/// most 31 bytes after the <c>\n</c> end up in <see cref="HostConnectRequest.InitialData"/>; the rest
/// of the stream stays in the socket.</para>
/// <para><b>Threading:</b> accepts, handshakes and timers run on the loop; <see cref="TryTake"/>,
/// <see cref="Counters"/> and dispose come from any thread. The sets of pending handshakes and queued requests are
/// behind one small lock.</para>
/// </remarks>
internal sealed partial class HybridVsockListener : IAsyncDisposable, IDisposable
{
    /// <summary>The most connections one readiness event (or accept pass) takes before the loop serves other work.</summary>
    public const int AcceptsPerPass = 16;

    private const int MinBackoffMilliseconds = 10;
    private const int MaxBackoffMilliseconds = 1000;

    private readonly Socket _listener;
    private readonly HybridVsockListenerOptions _options;
    private readonly long _handshakeTicks;
    private readonly int _maxPending;
    private readonly int _maxQueued;
    private readonly UnixSocketPath.Identity _identity;
    private readonly Acceptor _acceptor;
    private readonly object _lock = new();
    private readonly HashSet<HostHandshake> _handshakes = [];
    private readonly Queue<HostConnectRequest> _queue = new();
    private readonly Queue<HostConnectRequest> _overflow = new();
    private readonly long[] _failures = new long[Enum.GetValues<HandshakeFailure>().Length];
    private IVsockFdPoller? _loop;
    private IVsockFdWatch? _watch;
    private IVsockTimer? _acceptTimer;
    private bool _paused;
    private bool _disposed;
    private int _backoff;
    private long _accepted;
    private long _delivered;
    private long _acceptErrors;
    private volatile int _pending;
    private volatile int _queued;

    private HybridVsockListener(Socket listener, HybridVsockListenerOptions options, UnixSocketPath.Identity identity)
    {
        _listener = listener;
        _options = options;
        _handshakeTicks = (long)(options.HandshakeTimeout.TotalSeconds * Stopwatch.Frequency);
        _maxPending = options.MaxPendingHandshakes;
        _maxQueued = options.MaxQueuedRequests;
        _identity = identity;
        _acceptor = new Acceptor(this);
        Path = options.Path;
        SocketType = options.SocketType;
    }

    /// <summary>The socket path listened on.</summary>
    public string Path { get; }

    /// <summary>The socket type listened with.</summary>
    public VsockType SocketType { get; }

    /// <summary>A snapshot of the counters.</summary>
    public HybridVsockListenerCounters Counters => new()
    {
        Accepted = Interlocked.Read(ref _accepted),
        Delivered = Interlocked.Read(ref _delivered),
        InvalidCommand = Interlocked.Read(ref _failures[(int)HandshakeFailure.InvalidCommand]),
        CommandTooLong = Interlocked.Read(ref _failures[(int)HandshakeFailure.CommandTooLong]),
        EndOfStream = Interlocked.Read(ref _failures[(int)HandshakeFailure.EndOfStream]),
        TimedOut = Interlocked.Read(ref _failures[(int)HandshakeFailure.TimedOut]),
        ConnectionError = Interlocked.Read(ref _failures[(int)HandshakeFailure.ConnectionError]),
        MessageNotOneLine = Interlocked.Read(ref _failures[(int)HandshakeFailure.MessageNotOneLine]),
        ListenerStopped = Interlocked.Read(ref _failures[(int)HandshakeFailure.ListenerStopped]),
        AcceptErrors = Interlocked.Read(ref _acceptErrors),
        PendingHandshakes = _pending,
        QueuedRequests = _queued,
    };

    /// <summary>Starts listening, or reports why it cannot.</summary>
    /// <param name="options">The settings.</param>
    /// <param name="listener">The running listener, or null.</param>
    /// <returns><see cref="UnixSocketPath.Error.None"/> when started.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The handshake timeout is not in (0, 1 day], a limit is not positive, or the socket type is unknown.</exception>
    public static UnixSocketPath.Error TryStart(HybridVsockListenerOptions options, out HybridVsockListener? listener) =>
        TryStartCore(options, out listener, out _);

    /// <summary>Starts listening, or throws <see cref="IOException"/> saying why it cannot.</summary>
    /// <param name="options">The settings.</param>
    /// <returns>The running listener.</returns>
    /// <exception cref="IOException">The path is in use by a live listener, is not a socket, or cannot be bound.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The handshake timeout is not in (0, 1 day], a limit is not positive, or the socket type is unknown.</exception>
    public static HybridVsockListener Start(HybridVsockListenerOptions options)
    {
        UnixSocketPath.Error error = TryStartCore(options, out HybridVsockListener? listener, out int errno);
        if (error != UnixSocketPath.Error.None)
        {
            string detail = errno != 0 ? $" (errno {errno}: {Marshal.GetPInvokeErrorMessage(errno)})" : string.Empty;
            throw new IOException($"Cannot listen on '{options.Path}': {error}{detail}.");
        }

        return listener!;
    }

    /// <summary>
    /// Hands the listener the device loop that serves it: from now on the loop accepts and runs the handshakes
    /// (connections that waited in the backlog are taken at once). Any thread. Attaching another loop moves the
    /// listening socket there (handshakes already running stay on the old loop until they end).
    /// </summary>
    /// <param name="loop">The device loop (<see cref="IVsockBackendHost.FdPoller"/>).</param>
    /// <returns><see langword="false"/> when disposed or when the loop cannot watch the socket (it stopped).</returns>
    public bool Attach(IVsockFdPoller loop)
    {
        ArgumentNullException.ThrowIfNull(loop);
        lock (_lock)
        {
            if (_disposed)
            {
                return false;
            }

            if (ReferenceEquals(loop, _loop) && _watch is not null)
            {
                return true;
            }

            _watch?.Dispose();
            _acceptTimer?.Dispose();
            _loop = loop;
            _paused = false;
            _watch = loop.Watch(_listener.SafeHandle, _acceptor, out _);
            _acceptTimer = loop.CreateTimer(_acceptor);

            // One pass on the loop: takes what waited in the backlog, then asks for readability.
            return _watch is not null && _acceptTimer.Schedule(0);
        }
    }

    /// <summary>
    /// Takes the oldest queued request, if any (any thread). Taking one makes room: a handshake that completed while
    /// the queue was full joins it, and accepting resumes if it had stopped at the handshake bound.
    /// </summary>
    /// <param name="request">The request (now the caller's to accept, reject or dispose), or null.</param>
    /// <returns>Whether a request was taken.</returns>
    public bool TryTake([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out HostConnectRequest? request)
    {
        lock (_lock)
        {
            if (!_queue.TryDequeue(out request))
            {
                return false;
            }

            if (_overflow.TryDequeue(out HostConnectRequest? next))
            {
                _queue.Enqueue(next);
                Interlocked.Increment(ref _delivered);
                ResumeIfPaused();
            }

            UpdateCounts();
            return true;
        }
    }

    /// <summary>Whether a request is queued right now.</summary>
    public bool HasQueued => _queued > 0;

    /// <summary>A handshake ended (on the loop, or on the disposing thread for an abort): queue the request or count the failure.</summary>
    /// <param name="handshake">The handshake (it released its watch and timer).</param>
    /// <param name="request">The complete request, or null when it failed.</param>
    /// <param name="failure">Why it failed.</param>
    /// <param name="detail">The parser's detail.</param>
    internal void OnHandshakeDone(HostHandshake handshake, HostConnectRequest? request, HandshakeFailure failure, ConnectCommandError detail)
    {
        bool queued = false;
        lock (_lock)
        {
            _handshakes.Remove(handshake);
            if (request is not null)
            {
                if (_disposed)
                {
                    request.Dispose();
                    request = null;
                    failure = HandshakeFailure.ListenerStopped;
                }
                else if (_queue.Count < _maxQueued)
                {
                    _queue.Enqueue(request);
                    Interlocked.Increment(ref _delivered);
                    queued = true;
                }
                else
                {
                    // Complete, but no room: it keeps its pending slot until the engine takes a request.
                    _overflow.Enqueue(request);
                }
            }

            ResumeIfPaused();
            UpdateCounts();
        }

        if (request is null)
        {
            CountFailure(failure, detail);
        }
        else if (queued && _options.RequestQueued is { } notify)
        {
            try
            {
                notify();
            }
            catch (Exception e)
            {
                // The engine's bug; the request stays queued for its next take.
                Trace.TraceError("hybrid vsock listener {0}: the request callback threw: {1}", Path, e);
            }
        }
    }

    /// <summary>
    /// Stops accepting, closes every handshake in progress and every request still queued (a
    /// request already taken by the engine is the engine's), and removes the socket file if it is still this
    /// listener's. Connections still in the kernel backlog are closed with the listening socket.
    /// </summary>
    /// <returns>A completed task: nothing is left running (handshakes live on the loop and are closed here).</returns>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>As <see cref="DisposeAsync"/>. Idempotent; any thread.</summary>
    public void Dispose()
    {
        HostHandshake[] handshakes;
        HostConnectRequest[] overflow;
        HostConnectRequest[] queued;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            handshakes = [.. _handshakes];
            _handshakes.Clear();
            overflow = [.. _overflow];
            _overflow.Clear();
            queued = [.. _queue];
            _queue.Clear();
            UpdateCounts();
        }

        _watch?.Dispose();
        _acceptTimer?.Dispose();
        _listener.Dispose();
        foreach (HostHandshake handshake in handshakes)
        {
            if (handshake.Abort())
            {
                CountFailure(HandshakeFailure.ListenerStopped, ConnectCommandError.None);
            }
        }

        foreach (HostConnectRequest request in overflow)
        {
            request.Dispose();
            CountFailure(HandshakeFailure.ListenerStopped, ConnectCommandError.None);
        }

        foreach (HostConnectRequest request in queued)
        {
            request.Dispose();
            Interlocked.Increment(ref _failures[(int)HandshakeFailure.ListenerStopped]);
        }

        UnixSocketPath.RemoveIfOurs(Path, _identity);
    }

    private static UnixSocketPath.Error TryStartCore(HybridVsockListenerOptions options, out HybridVsockListener? listener, out int errno)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.HandshakeTimeout, TimeSpan.Zero, nameof(options));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.HandshakeTimeout, TimeSpan.FromDays(1), nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxPendingHandshakes, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxQueuedRequests, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Backlog, 0, nameof(options));
        int nativeType = options.SocketType switch
        {
            VsockType.Stream => Interop.Sys.SockStream,
            VsockType.SeqPacket => Interop.Sys.SockSeqPacket,
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.SocketType, "Unknown socket type."),
        };

        listener = null;
        errno = 0;
        string path = options.Path;
        if (!UnixBackendPaths.FitsSocketAddress(path))
        {
            return UnixSocketPath.Error.InvalidPath;
        }

        if (!Interop.IsSupported)
        {
            errno = Interop.Errors.ENOSYS;
            return UnixSocketPath.Error.Failed;
        }

        Socket socket;
        UnixSocketPath.Identity identity = default;
        if (options.Passed is { } passed)
        {
            // Socket activation: the service manager bound it; never probe, bind or remove the path.
            if (passed.SocketType != (nativeType == Interop.Sys.SockStream ? System.Net.Sockets.SocketType.Stream : System.Net.Sockets.SocketType.Seqpacket))
            {
                passed.Dispose();
                return UnixSocketPath.Error.Failed;
            }

            socket = passed;
        }
        else
        {
            // Probe (a live socket is refused, a stale one removed, a non-socket never touched), bind, listen.
            UnixSocketPath.Error error = UnixSocketPath.Listen(path, nativeType, options.Backlog, mode: null, out int fd, out identity, out errno);
            if (error != UnixSocketPath.Error.None)
            {
                return error;
            }

            try
            {
                socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
            }
            catch (SocketException e)
            {
                Interop.Sys.Close(fd);
                UnixSocketPath.RemoveIfOurs(path, identity);
                errno = e.NativeErrorCode;
                return UnixSocketPath.Error.Failed;
            }
        }

        try
        {
            // accept4 runs on the device loop: it must say EAGAIN, never wait.
            socket.Blocking = false;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            UnixSocketPath.RemoveIfOurs(path, identity);
            errno = e.NativeErrorCode;
            return UnixSocketPath.Error.Failed;
        }

        listener = new HybridVsockListener(socket, options, identity);
        return UnixSocketPath.Error.None;
    }

    /// <summary>A pending slot freed: if accepting stopped at the bound, run a pass on the loop (under the lock).</summary>
    private void ResumeIfPaused()
    {
        if (_paused && !_disposed && _handshakes.Count + _overflow.Count < _maxPending)
        {
            _paused = false;
            _acceptTimer?.Schedule(0);
        }
    }

    /// <summary>Publishes the two gauges (under the lock).</summary>
    private void UpdateCounts()
    {
        _pending = _handshakes.Count + _overflow.Count;
        _queued = _queue.Count;
    }

    private void CountFailure(HandshakeFailure failure, ConnectCommandError detail)
    {
        Interlocked.Increment(ref _failures[(int)failure]);
        Action<HandshakeFailure, ConnectCommandError>? failed = _options.HandshakeFailed;
        if (failed is not null)
        {
            try
            {
                failed(failure, detail);
            }
            catch (Exception)
            {
                // A logging callback must not take the listener down.
            }
        }
    }
}
