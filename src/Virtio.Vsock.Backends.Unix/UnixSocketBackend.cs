using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// The hybrid-vsock host backend (Firecracker / vhost-device-vsock compatible): host programs reach the
/// guest through Unix sockets, and guest connections to host port P go to the Unix socket
/// <c>&lt;uds_path&gt;_P</c>. Stream and SEQPACKET both ways.
/// </summary>
/// <remarks>
/// <para><b>Host-initiated:</b> a host program connects to <see cref="UnixSocketBackendOptions.UdsPath"/>
/// (SOCK_STREAM) or <c>uds_path.seqpacket</c> (SOCK_SEQPACKET, <see cref="UnixBackendPaths.SeqPacketListenerPath"/>)
/// and writes <c>CONNECT &lt;port&gt;\n</c>; the backend asks the device to connect to that guest port and,
/// once the guest accepted, writes <c>OK &lt;local_port&gt;\n</c>, after which the socket carries the
/// connection (bytes sent right after the <c>\n</c> reach the guest first). If the guest refuses or
/// does not answer, the socket is closed without a reply. Malformed, oversized, slow and truncated
/// handshakes are handled by <see cref="HybridVsockListener"/>.</para>
/// <para><b>Guest-initiated:</b> <see cref="IVsockBackend.OnGuestConnect"/> connects without blocking to
/// <c>&lt;uds_path&gt;_P</c> with the guest's socket type (<see cref="UnixPortConnector"/>); a missing or stale
/// socket file is refused at once (the guest gets RST), a full backlog is retried on timers up to
/// <see cref="UnixSocketBackendOptions.GuestConnectTimeout"/>.</para>
/// <para><b>Threading:</b> the device loop calls the <see cref="IVsockBackend"/> methods and every
/// connection's I/O (non-blocking system calls straight between sockets and guest memory). Every connected
/// host socket is watched by the device's own loop (<see cref="IVsockBackendHost.FdPoller"/>: the same
/// epoll that waits for the guest's kicks), so readiness reaches the connection with no thread of the
/// backend's own and no hop between threads; an idle connection costs no CPU. The listeners are on the same loop
/// once a device attached (accept, handshake reads, handshake deadlines and accept back-off; see
/// <see cref="HybridVsockListener"/>), and a completed handshake starts its guest connect in the same turn. A guest
/// connect that meets a full host backlog is retried on the loop's timers and completed there. A host connect's
/// outcome comes back on the loop too (<see cref="IVsockBackendHost.Connect"/>), where the <c>OK</c> reply is one
/// non-blocking send: no thread-pool work item anywhere on a connection's path.</para>
/// <para><b>Owns:</b> the listeners (and their socket files), every host socket it opened or
/// accepted (through its endpoints), and the bounded set of host connections waiting for the guest.
/// <b>Must never:</b> block the device loop, hold unbounded memory (handshakes, waiting host connects and
/// per-connection staging are all bounded), let one host peer's failure affect another, or leave a socket
/// open after <see cref="DisposeAsync"/>.</para>
/// </remarks>
public sealed partial class UnixSocketBackend : IVsockBackend, IAsyncDisposable
{
    private const int Created = 0;
    private const int Running = 1;
    private const int Disposed = 2;

    private static readonly TimeSpan DisposeWait = TimeSpan.FromSeconds(5);

    private readonly UnixSocketBackendOptions _options;
    private readonly ILogger? _logger;
    private readonly UnixPortConnector _connector;
    private readonly Action<object?, UnixConnectResult> _onRetriedConnect;
    private readonly ConcurrentDictionary<UnixSocketEndpoint, byte> _endpoints = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly object _lock = new();
    private CancellationTokenSource _reset = new();
    private IVsockBackendHost? _host;
    private HybridVsockListener? _streamListener;
    private HybridVsockListener? _seqPacketListener;
    private bool _takeSeqPacketFirst;
    private int _state;
    private int _inFlight;
    private int _pendingHostConnects;
    private long _hostConnects;
    private long _hostConnectsFailed;
    private long _guestConnects;
    private long _guestConnectsRefused;
    private long _guestConnectsDenied;
    private long _hostConnectsDenied;

    /// <summary>Creates the backend (nothing listens until <see cref="Start"/>).</summary>
    /// <param name="options">The settings.</param>
    /// <exception cref="ArgumentException">The path is empty, contains NUL, or <c>&lt;uds_path&gt;_4294967295</c> / <c>uds_path.seqpacket</c> does not fit in a socket address.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A timeout or limit is out of range.</exception>
    public UnixSocketBackend(UnixSocketBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(options.UdsPath, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxPendingHostConnects, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxPendingHandshakes, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ListenBacklog, 0, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxSeqPacketMessageSize, 1, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.HandshakeTimeout, TimeSpan.Zero, nameof(options));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.HandshakeTimeout, TimeSpan.FromDays(1), nameof(options));
        if (options.SeqPacketListener && !UnixBackendPaths.FitsSocketAddress(UnixBackendPaths.SeqPacketListenerPath(options.UdsPath)))
        {
            throw new ArgumentException($"'{options.UdsPath}{UnixBackendPaths.SeqPacketListenerSuffix}' does not fit in a Unix socket address.", nameof(options));
        }

        _connector = new UnixPortConnector(options.UdsPath, options.GuestConnectTimeout);
        _options = options;
        _logger = options.Logger;
        _onRetriedConnect = OnRetriedConnect;
    }

    /// <summary>The hybrid-vsock socket path (stream listener).</summary>
    public string UdsPath => _options.UdsPath;

    /// <summary>The SEQPACKET listener's path, or null when it is off.</summary>
    public string? SeqPacketPath => _options.SeqPacketListener ? UnixBackendPaths.SeqPacketListenerPath(_options.UdsPath) : null;

    /// <summary>A snapshot of the counters.</summary>
    public UnixSocketBackendCounters Counters => new()
    {
        HostConnects = Interlocked.Read(ref _hostConnects),
        HostConnectsFailed = Interlocked.Read(ref _hostConnectsFailed),
        GuestConnects = Interlocked.Read(ref _guestConnects),
        GuestConnectsRefused = Interlocked.Read(ref _guestConnectsRefused),
        GuestConnectsDenied = Interlocked.Read(ref _guestConnectsDenied),
        HostConnectsDenied = Interlocked.Read(ref _hostConnectsDenied),
        OpenSockets = _endpoints.Count,
        PendingHostConnects = Volatile.Read(ref _pendingHostConnects),
        StreamListener = _streamListener?.Counters ?? default,
        SeqPacketListener = _seqPacketListener?.Counters ?? default,
    };

    /// <summary>
    /// Starts the listeners: SOCK_STREAM at <see cref="UdsPath"/> and, unless
    /// turned off, SOCK_SEQPACKET at <see cref="SeqPacketPath"/>. A stale socket file at either path is
    /// replaced; a live one is not. Until a device attaches the backend, host programs' connections wait in the
    /// listeners' kernel backlog; they are served once the device's loop takes the listeners over.
    /// </summary>
    /// <exception cref="IOException">A path is in use by a live listener, is not a socket, or cannot be bound.</exception>
    /// <exception cref="InvalidOperationException">Already started.</exception>
    /// <exception cref="ObjectDisposedException">Disposed.</exception>
    public void Start()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_state == Disposed, this);
            if (_state == Running)
            {
                throw new InvalidOperationException("The Unix socket backend is already started.");
            }

            HybridVsockListener? stream = null;
            try
            {
                stream = HybridVsockListener.Start(ListenerOptions(_options.UdsPath, VsockType.Stream));
                HybridVsockListener? seqPacket = _options.SeqPacketListener
                    ? HybridVsockListener.Start(ListenerOptions(UnixBackendPaths.SeqPacketListenerPath(_options.UdsPath), VsockType.SeqPacket))
                    : null;
                _streamListener = stream;
                _seqPacketListener = seqPacket;
            }
            catch
            {
                stream?.Dispose();
                throw;
            }

            _state = Running;
            if (Volatile.Read(ref _host) is { } host)
            {
                AttachListeners(host.FdPoller);
            }
        }

        if (_logger is not null)
        {
            LogStarted(_logger, _options.UdsPath, SeqPacketPath ?? "(off)");
        }
    }

    /// <inheritdoc/>
    void IVsockBackend.Attach(IVsockBackendHost host)
    {
        ArgumentNullException.ThrowIfNull(host);
        lock (_lock)
        {
            Volatile.Write(ref _host, host);
            if (_state == Running)
            {
                AttachListeners(host.FdPoller);
            }
        }
    }

    /// <inheritdoc/>
    void IVsockBackend.OnGuestConnect(IVsockIncomingConnection connection)
    {
        if (Volatile.Read(ref _state) != Running)
        {
            Refuse(connection, UnixConnectStatus.Canceled);
            return;
        }

        if (_options.Access is { } access && !access.AllowsGuestConnect(connection.LocalPort))
        {
            // Denied: the same RST as when nobody listens on the host port.
            Interlocked.Increment(ref _guestConnectsDenied);
            if (_logger is not null)
            {
                LogGuestConnectDenied(_logger, connection.PeerPort, connection.LocalPort);
            }

            Refuse(connection, UnixConnectStatus.Refused);
            return;
        }

        IVsockBackendHost? host = Volatile.Read(ref _host);
        if (host is null)
        {
            Refuse(connection, UnixConnectStatus.Canceled);
            return;
        }

        // Done at once unless the host listener's backlog is full; then retried on the device loop's timers and
        // completed there (or by the reset that cancels it).
        if (_connector.Connect(connection.LocalPort, connection.Type, host.FdPoller, _onRetriedConnect, connection, _reset.Token, out UnixConnectResult result))
        {
            CompleteGuestConnect(connection, result);
        }
    }

    /// <inheritdoc/>
    void IVsockBackend.OnDeviceReset()
    {
        // Connects still retrying a full backlog are abandoned: their connections are gone.
        CancellationTokenSource old;
        lock (_lock)
        {
            old = _reset;
            _reset = new CancellationTokenSource();
        }

        old.Cancel();
    }

    /// <summary>
    /// Stops both listeners (removing their socket files), abandons host connections still waiting for
    /// the guest (the guest gets RST), closes every host socket (the device resets their connections at
    /// its next look), waits (at most 5 s) for in-flight work. Idempotent.
    /// </summary>
    /// <returns>A task that completes when everything is closed.</returns>
    public async ValueTask DisposeAsync()
    {
        CancellationTokenSource reset;
        lock (_lock)
        {
            if (_state == Disposed)
            {
                return;
            }

            _state = Disposed;
            reset = _reset;
        }

        _stop.Cancel();
        reset.Cancel();
        if (_streamListener is not null)
        {
            await _streamListener.DisposeAsync().ConfigureAwait(false);
        }

        if (_seqPacketListener is not null)
        {
            await _seqPacketListener.DisposeAsync().ConfigureAwait(false);
        }

        foreach (UnixSocketEndpoint endpoint in _endpoints.Keys)
        {
            endpoint.Kill();
        }

        long until = Environment.TickCount64 + (long)DisposeWait.TotalMilliseconds;
        while (Volatile.Read(ref _inFlight) > 0 && Environment.TickCount64 < until)
        {
            await Task.Delay(5).ConfigureAwait(false);
        }

        // Endpoints created by work that finished meanwhile (none after the state change, but be thorough),
        // and closes still running on another thread (the device loop, a reply continuation): wait for them.
        foreach (UnixSocketEndpoint endpoint in _endpoints.Keys)
        {
            endpoint.Kill();
        }

        while (!_endpoints.IsEmpty && Environment.TickCount64 < until)
        {
            await Task.Delay(1).ConfigureAwait(false);
        }

        if (_logger is not null)
        {
            LogStopped(_logger, _options.UdsPath);
        }
    }

    /// <summary>An endpoint closed its socket.</summary>
    /// <param name="endpoint">The endpoint.</param>
    internal void OnEndpointClosed(UnixSocketEndpoint endpoint) => _endpoints.TryRemove(endpoint, out _);

    private HybridVsockListenerOptions ListenerOptions(string path, VsockType type) => new()
    {
        Path = path,
        Passed = _options.PassedListener?.Invoke(path),
        SocketType = type,
        HandshakeTimeout = _options.HandshakeTimeout,
        RequestQueued = PumpHostConnects,
        MaxPendingHandshakes = _options.MaxPendingHandshakes,
        Backlog = _options.ListenBacklog,
        HandshakeFailed = _logger is null ? null : (failure, detail) => LogHandshakeFailed(_logger, path, failure, detail),
    };

    /// <summary>Wraps a connected socket in an endpoint watched by the device loop; null (socket untouched) when stopping, not attached, or on failure.</summary>
    private UnixSocketEndpoint? CreateEndpoint(System.Net.Sockets.Socket socket, VsockType type, ReadOnlyMemory<byte> initialData, bool replyPending)
    {
        lock (_lock)
        {
            IVsockBackendHost? host = Volatile.Read(ref _host);
            if (_state != Running || host is null)
            {
                return null;
            }

            UnixIoResult created = UnixSocketEndpoint.TryCreate(
                this, socket, type, initialData, replyPending, _options.MaxSeqPacketMessageSize, host.FdPoller, out UnixSocketEndpoint? endpoint);
            if (!created.IsOk || endpoint is null)
            {
                if (_logger is not null)
                {
                    LogSocketSetupFailed(_logger, created.ToString());
                }

                return null;
            }

            _endpoints.TryAdd(endpoint, 0);
            return endpoint;
        }
    }

    // ---------------------------------------------------------------- guest-initiated

    /// <summary>A guest connect that met a full backlog ended (on the device loop, or on the thread that reset or disposed us).</summary>
    private void OnRetriedConnect(object? state, UnixConnectResult result)
    {
        var connection = (IVsockIncomingConnection)state!;
        try
        {
            CompleteGuestConnect(connection, result);
        }
        catch (Exception e)
        {
            // Nothing here should throw; be safe anyway.
            result.Socket?.Dispose();
            Refuse(connection, UnixConnectStatus.Failed);
            if (_logger is not null)
            {
                LogUnexpected(_logger, e);
            }
        }
    }

    private void CompleteGuestConnect(IVsockIncomingConnection connection, UnixConnectResult result)
    {
        if (!result.IsConnected)
        {
            Refuse(connection, result.Status, result.Errno);
            return;
        }

        System.Net.Sockets.Socket socket = result.Socket!;
        UnixSocketEndpoint? endpoint = CreateEndpoint(socket, connection.Type, ReadOnlyMemory<byte>.Empty, replyPending: false);
        if (endpoint is null)
        {
            socket.Dispose();
            Refuse(connection, UnixConnectStatus.Failed);
            return;
        }

        Interlocked.Increment(ref _guestConnects);
        connection.Accept(endpoint);
    }

    private void Refuse(IVsockIncomingConnection connection, UnixConnectStatus status, int errno = 0)
    {
        Interlocked.Increment(ref _guestConnectsRefused);
        connection.Refuse();
        if (_logger is not null)
        {
            LogGuestConnectRefused(_logger, connection.PeerPort, connection.LocalPort, connection.Type, status, errno);
        }
    }

    // ---------------------------------------------------------------- logging

    [LoggerMessage(EventId = 120, Level = LogLevel.Debug, Message = "Unix backend: guest port {GuestPort} to host port {HostPort} denied by the access rules (answered as no listener)")]
    private static partial void LogGuestConnectDenied(ILogger logger, uint guestPort, uint hostPort);

    [LoggerMessage(EventId = 121, Level = LogLevel.Debug, Message = "Unix backend: host connection to guest port {GuestPort} denied by the access rules (uid {Uid}, gid {Gid}, pid {Pid}; closed as no listener)")]
    private static partial void LogHostConnectDenied(ILogger logger, uint guestPort, uint uid, uint gid, int pid);

    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Unix backend: listening on {UdsPath} (stream) and {SeqPacketPath} (seqpacket)")]
    private static partial void LogStarted(ILogger logger, string udsPath, string seqPacketPath);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "Unix backend on {UdsPath}: stopped")]
    private static partial void LogStopped(ILogger logger, string udsPath);

    [LoggerMessage(EventId = 102, Level = LogLevel.Debug, Message = "Unix backend: host connection on {Path} rejected: {Failure} {Detail}")]
    private static partial void LogHandshakeFailed(ILogger logger, string path, HandshakeFailure failure, ConnectCommandError detail);

    [LoggerMessage(EventId = 103, Level = LogLevel.Debug, Message = "Unix backend: host connect to guest port {Port} ({Type}) failed: {Reason}")]
    private static partial void LogHostConnectFailed(ILogger logger, uint port, VsockType type, string reason);

    [LoggerMessage(EventId = 104, Level = LogLevel.Debug, Message = "Unix backend: guest port {GuestPort} -> host port {HostPort} ({Type}) refused: {Status} (errno {Errno})")]
    private static partial void LogGuestConnectRefused(ILogger logger, uint guestPort, uint hostPort, VsockType type, UnixConnectStatus status, int errno);

    [LoggerMessage(EventId = 105, Level = LogLevel.Warning, Message = "Unix backend: cannot use a connected socket: {Reason}")]
    private static partial void LogSocketSetupFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 106, Level = LogLevel.Error, Message = "Unix backend: unexpected failure")]
    private static partial void LogUnexpected(ILogger logger, Exception exception);
}
