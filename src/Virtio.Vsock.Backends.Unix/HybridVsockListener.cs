using System.Diagnostics.CodeAnalysis;
using System.Net.Sockets;
using System.Threading.Channels;
using Virtio.Vsock;

namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// Listens on a Unix socket for host-initiated hybrid-vsock connections (Firecracker /
/// vhost-device-vsock compatible), reads each one's <c>CONNECT &lt;port&gt;\n</c> line under a
/// deadline, and queues the good ones as <see cref="HostConnectRequest"/>s for the engine. Owns the
/// listening socket, its socket file, the sockets of handshakes in progress and of queued requests.
/// It must never crash or stop serving because of one host peer (malformed, oversized, silent or
/// vanishing peers are closed and counted), never let the engine's thread wait (handshake reads are
/// non-blocking and run on thread-pool continuations; the device loop only tells when a handshake socket
/// is readable, see <see cref="HybridVsockListenerOptions.ReadinessPoller"/>; the engine only reads a
/// channel), and never hold unbounded memory
/// (at most <see cref="HybridVsockListenerOptions.MaxPendingHandshakes"/> handshakes with a 32-byte
/// buffer each, at most <see cref="HybridVsockListenerOptions.MaxQueuedRequests"/> queued requests;
/// beyond that, connections wait in the kernel backlog).
/// </summary>
/// <remarks>
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
/// <para>The handshake line is parsed by <see cref="ConnectCommandParser"/> (grammar and tolerance
/// there). At most 32 bytes are read from a stream connection before the line completes, so at
/// most 31 bytes after the <c>\n</c> end up in <see cref="HostConnectRequest.InitialData"/>; the rest
/// of the stream stays in the socket.</para>
/// </remarks>
internal sealed class HybridVsockListener : IAsyncDisposable, IDisposable
{
    private static readonly TimeSpan DisposeWait = TimeSpan.FromSeconds(5);

    private readonly Socket _listener;
    private readonly HybridVsockListenerOptions _options;
    private readonly TimeSpan _handshakeTimeout;
    private readonly int _maxPending;
    private readonly UnixSocketPath.Identity _identity;
    private readonly SemaphoreSlim _slots;
    private readonly Channel<HostConnectRequest> _channel;
    private readonly CancellationTokenSource _stop = new();
    private readonly long[] _failures = new long[Enum.GetValues<HandshakeFailure>().Length];
    private Task _acceptLoop = Task.CompletedTask;
    private long _accepted;
    private long _delivered;
    private long _acceptErrors;
    private int _pending;
    private int _disposed;

    private HybridVsockListener(Socket listener, HybridVsockListenerOptions options, UnixSocketPath.Identity identity)
    {
        _listener = listener;
        _options = options;
        _handshakeTimeout = options.HandshakeTimeout;
        _maxPending = options.MaxPendingHandshakes;
        _identity = identity;
        Path = options.Path;
        SocketType = options.SocketType;
        _slots = new SemaphoreSlim(_maxPending, _maxPending);
        _channel = Channel.CreateBounded<HostConnectRequest>(new BoundedChannelOptions(options.MaxQueuedRequests)
        {
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    /// <summary>The socket path listened on.</summary>
    public string Path { get; }

    /// <summary>The socket type listened with.</summary>
    public VsockType SocketType { get; }

    /// <summary>
    /// Completed handshakes, in completion order. The engine reads with
    /// <see cref="ChannelReader{T}.TryRead"/> and awaits <see cref="ChannelReader{T}.WaitToReadAsync"/> to learn
    /// there is work: the one way requests are consumed. Each request read is the reader's to accept, reject or
    /// dispose.
    /// </summary>
    public ChannelReader<HostConnectRequest> Requests => _channel.Reader;

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
        PendingHandshakes = Volatile.Read(ref _pending),
        QueuedRequests = _channel.Reader.CanCount ? _channel.Reader.Count : 0,
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
            string detail = errno != 0 ? $" (errno {errno}: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)})" : string.Empty;
            throw new IOException($"Cannot listen on '{options.Path}': {error}{detail}.");
        }

        return listener!;
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

        if (options.Passed is { } passed)
        {
            // Socket activation: the service manager bound it; never probe, bind or remove the path.
            if (passed.SocketType != (nativeType == Interop.Sys.SockStream ? System.Net.Sockets.SocketType.Stream : System.Net.Sockets.SocketType.Seqpacket))
            {
                passed.Dispose();
                return UnixSocketPath.Error.Failed;
            }

            listener = new HybridVsockListener(passed, options, default);
            HybridVsockListener activated = listener;
            listener._acceptLoop = Task.Run(activated.AcceptLoopAsync);
            return UnixSocketPath.Error.None;
        }

        // Probe (a live socket is refused, a stale one removed, a non-socket never touched), bind, listen.
        UnixSocketPath.Error error = UnixSocketPath.Listen(path, nativeType, options.Backlog, mode: null, out int fd, out UnixSocketPath.Identity identity, out errno);
        if (error != UnixSocketPath.Error.None)
        {
            return error;
        }

        Socket socket;
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

        listener = new HybridVsockListener(socket, options, identity);
        HybridVsockListener started = listener;
        listener._acceptLoop = Task.Run(started.AcceptLoopAsync);
        return UnixSocketPath.Error.None;
    }

    private async Task AcceptLoopAsync()
    {
        CancellationToken stop = _stop.Token;
        int backoff = 0;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await _slots.WaitAsync(stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            Socket client;
            try
            {
                client = await _listener.AcceptAsync(stop).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                _slots.Release();
                break;
            }
            catch (SocketException e)
            {
                _slots.Release();
                Interlocked.Increment(ref _acceptErrors);
                if (stop.IsCancellationRequested)
                {
                    break;
                }

                if (e.SocketErrorCode is SocketError.ConnectionAborted or SocketError.ConnectionReset or SocketError.Interrupted)
                {
                    continue;
                }

                // Out of descriptors or memory: back off instead of spinning on accept().
                backoff = Math.Clamp(backoff * 2, 10, 1000);
                try
                {
                    await Task.Delay(backoff, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                continue;
            }

            backoff = 0;
            Interlocked.Increment(ref _accepted);
            Interlocked.Increment(ref _pending);
            _ = HandshakeAsync(client);
        }
    }

    private async Task HandshakeAsync(Socket socket)
    {
        HostConnectRequest? request = null;
        HandshakeFailure failure = HandshakeFailure.ConnectionError;
        ConnectCommandError detail = ConnectCommandError.None;
        CancellationTokenSource deadline = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        try
        {
            deadline.CancelAfter(_handshakeTimeout);
            byte[] buffer = new byte[ConnectCommandParser.MaxLineLength];
            var parser = default(ConnectCommandParser);
            if (SocketType == VsockType.Stream)
            {
                int filled = 0;
                while (true)
                {
                    UnixIoResult received = UnixSocketIo.Receive(socket, buffer.AsSpan(filled));
                    if (received.Status == UnixIoStatus.WouldBlock)
                    {
                        await WaitReadableAsync(socket, deadline.Token).ConfigureAwait(false);
                        continue;
                    }

                    if (!received.IsOk && received.Status != UnixIoStatus.EndOfStream)
                    {
                        failure = HandshakeFailure.ConnectionError;
                        break;
                    }

                    int n = received.IsOk ? received.Bytes : 0;
                    ConnectParseResult result = n == 0 ? parser.EndOfStream() : parser.Feed(buffer.AsSpan(filled, n));
                    if (result.IsComplete)
                    {
                        int start = filled + result.BytesConsumed;
                        int end = filled + n;
                        ReadOnlyMemory<byte> initial = start < end ? buffer.AsMemory(start, end - start) : ReadOnlyMemory<byte>.Empty;
                        request = new HostConnectRequest(socket, VsockType.Stream, result.Port, initial);
                        break;
                    }

                    if (result.IsInvalid)
                    {
                        (failure, detail) = Classify(result.Error);
                        break;
                    }

                    filled += n;
                }
            }
            else
            {
                while (true)
                {
                    // Take the first message whole, waiting for it if it is not there yet.
                    UnixIoResult received = UnixSocketIo.ReceiveMessage(socket, buffer);
                    if (received.Status == UnixIoStatus.WouldBlock)
                    {
                        await WaitReadableAsync(socket, deadline.Token).ConfigureAwait(false);
                        continue;
                    }

                    if (received.Status == UnixIoStatus.EndOfStream)
                    {
                        (failure, detail) = (HandshakeFailure.EndOfStream, ConnectCommandError.EndOfStream);
                        break;
                    }

                    if (!received.IsOk)
                    {
                        failure = HandshakeFailure.ConnectionError;
                        break;
                    }

                    if (received.Truncated)
                    {
                        (failure, detail) = (HandshakeFailure.CommandTooLong, ConnectCommandError.TooLong);
                        break;
                    }

                    ConnectParseResult result = parser.Feed(buffer.AsSpan(0, received.Bytes));
                    if (result.IsComplete && result.BytesConsumed == received.Bytes)
                    {
                        request = new HostConnectRequest(socket, VsockType.SeqPacket, result.Port, ReadOnlyMemory<byte>.Empty);
                    }
                    else if (result.IsInvalid)
                    {
                        (failure, detail) = Classify(result.Error);
                    }
                    else
                    {
                        failure = HandshakeFailure.MessageNotOneLine;
                    }

                    break;
                }
            }
        }
        catch (OperationCanceledException)
        {
            failure = _stop.IsCancellationRequested ? HandshakeFailure.ListenerStopped : HandshakeFailure.TimedOut;
        }
        catch (ObjectDisposedException)
        {
            failure = HandshakeFailure.ListenerStopped;
        }
        catch (Exception)
        {
            // SocketException (reset, ...) or anything unexpected: this connection only.
            failure = _stop.IsCancellationRequested ? HandshakeFailure.ListenerStopped : HandshakeFailure.ConnectionError;
        }
        finally
        {
            deadline.Dispose();
        }

        try
        {
            if (request is not null)
            {
                if (await TryQueueAsync(request).ConfigureAwait(false))
                {
                    Interlocked.Increment(ref _delivered);
                    return;
                }

                request.Dispose();
                failure = HandshakeFailure.ListenerStopped;
            }
            else
            {
                socket.Dispose();
            }

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
        finally
        {
            Interlocked.Decrement(ref _pending);
            _slots.Release();
        }
    }

    /// <summary>
    /// Waits until <paramref name="socket"/> is readable. With a device attached its loop watches the socket (the
    /// runtime's socket engine never sees it, so once the connection carries data no second epoll wakes for it);
    /// without one, a zero-byte peek through the runtime.
    /// </summary>
    private async ValueTask WaitReadableAsync(Socket socket, CancellationToken cancellationToken)
    {
        IVsockFdPoller? poller = _options.ReadinessPoller?.Invoke();
        if (poller is null)
        {
            await socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.Peek, cancellationToken).ConfigureAwait(false);
            return;
        }

        var waiter = new ReadableWaiter();
        using IVsockFdWatch? watch = poller.Watch(socket.SafeHandle, waiter, out int error);
        if (watch is null)
        {
            throw new SocketException(error);
        }

        using CancellationTokenRegistration cancel = cancellationToken.Register(static w => ((ReadableWaiter)w!).Cancel(), waiter);
        watch.RequestReadable();
        await waiter.Task.ConfigureAwait(false);
    }

    private async ValueTask<bool> TryQueueAsync(HostConnectRequest request)
    {
        try
        {
            if (_channel.Writer.TryWrite(request))
            {
                return true;
            }

            await _channel.Writer.WriteAsync(request, _stop.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            return false;
        }
    }

    private static (HandshakeFailure Failure, ConnectCommandError Detail) Classify(ConnectCommandError error) => error switch
    {
        ConnectCommandError.TooLong => (HandshakeFailure.CommandTooLong, error),
        ConnectCommandError.EndOfStream => (HandshakeFailure.EndOfStream, error),
        _ => (HandshakeFailure.InvalidCommand, error),
    };

    /// <summary>
    /// Stops accepting, closes every handshake in progress and every request still queued (a
    /// request already taken by the engine is the engine's), waits (at most 5 s) for the handshake
    /// tasks to finish, and removes the socket file if it is still this listener's.
    /// </summary>
    /// <returns>A task that completes when the listener is down.</returns>
    public async ValueTask DisposeAsync()
    {
        if (!BeginDispose())
        {
            return;
        }

        await _acceptLoop.ConfigureAwait(false);
        long waitUntil = Environment.TickCount64 + (long)DisposeWait.TotalMilliseconds;
        for (int i = 0; i < _maxPending; i++)
        {
            long remaining = waitUntil - Environment.TickCount64;
            if (remaining <= 0 || !await _slots.WaitAsync((int)remaining).ConfigureAwait(false))
            {
                break;
            }
        }

        EndDispose();
    }

    /// <summary>
    /// Stops accepting, closes queued requests and removes the socket file, without waiting for
    /// handshake tasks (they close their own sockets as they observe the stop).
    /// </summary>
    public void Dispose()
    {
        if (BeginDispose())
        {
            EndDispose();
        }
    }

    private bool BeginDispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return false;
        }

        _stop.Cancel();
        _listener.Dispose();
        return true;
    }

    private void EndDispose()
    {
        _channel.Writer.TryComplete();
        while (_channel.Reader.TryRead(out HostConnectRequest? request))
        {
            request.Dispose();
            Interlocked.Increment(ref _failures[(int)HandshakeFailure.ListenerStopped]);
        }

        UnixSocketPath.RemoveIfOurs(Path, _identity);
    }

    /// <summary>One wait for a handshake socket to become readable, completed by the device loop.</summary>
    private sealed class ReadableWaiter : IVsockFdHandler
    {
        private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Task => _ready.Task;

        public void Cancel() => _ready.TrySetCanceled();

        public void OnReady(VsockFdReadiness readiness) => _ready.TrySetResult();

        public void OnFault(Exception exception) => _ready.TrySetException(exception);
    }
}
