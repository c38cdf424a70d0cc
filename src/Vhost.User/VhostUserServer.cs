using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Vhost.User;

/// <summary>
/// Listens on a Unix stream socket path and serves vhost-user frontends one at a time, each with a
/// <see cref="VhostUserConnection"/> on a dedicated control thread. When a frontend goes away the backend
/// is reset and the next frontend (for example a restarted QEMU) is accepted on the same socket.
/// </summary>
/// <remarks>
/// While one frontend is served, further connection attempts wait in the listen backlog until it leaves,
/// so a device never has two frontends. <see cref="Start()"/> removes a stale socket file left by a dead
/// process but refuses a path that a live listener still serves, or that is not a socket (all of it in
/// <see cref="UnixSocketPath"/>); a socket passed in (systemd) is never probed nor removed.
/// </remarks>
public sealed class VhostUserServer : IAsyncDisposable, IDisposable
{
    private readonly IVhostUserBackend _backend;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _gate = new();
    private Socket? _listener;
    private VhostUserConnection? _current;
    private Task _completion = Task.CompletedTask;
    private UnixSocketPath.Identity _socketIdentity;
    private int _served;
    private int _started;

    /// <summary>Creates a server; nothing happens until <see cref="Start()"/>.</summary>
    /// <param name="socketPath">The Unix socket path the frontend connects to.</param>
    /// <param name="backend">The device served to every frontend in turn.</param>
    /// <param name="logger">Where connection events and refused messages go; none when <see langword="null"/>.</param>
    /// <exception cref="ArgumentException">Empty path, or the backend reports an invalid queue count or size.</exception>
    public VhostUserServer(string socketPath, IVhostUserBackend backend, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        ArgumentNullException.ThrowIfNull(backend);
        VhostUserConnection.ValidateBackend(backend);
        SocketPath = socketPath;
        _backend = backend;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The socket path.</summary>
    public string SocketPath { get; }

    /// <summary>Whether a frontend is connected right now.</summary>
    public bool IsFrontendConnected => Volatile.Read(ref _current) is not null;

    /// <summary>The connection of the frontend served now, if any. For tests.</summary>
    internal VhostUserConnection? CurrentConnection => Volatile.Read(ref _current);

    /// <summary>How many frontend connections have ended so far.</summary>
    public int FrontendsServed => Volatile.Read(ref _served);

    /// <summary>Completes when the server has stopped (after <see cref="StopAsync"/>, or after a fatal listener error).</summary>
    public Task Completion => _completion;

    /// <summary>Binds and listens on <see cref="SocketPath"/>, then accepts frontends in the background.</summary>
    /// <exception cref="IOException">The path is served by a live listener, exists and is not a socket, or cannot be bound.</exception>
    /// <exception cref="InvalidOperationException">Called twice.</exception>
    public void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("The server was already started.");
        }

        _listener = Listen(SocketPath, out _socketIdentity);
        Log.Listening(_logger, SocketPath);
        _completion = Task.Run(AcceptLoopAsync);
    }

    /// <summary>
    /// Accepts frontends in the background on a socket that already listens on <see cref="SocketPath"/>, such as
    /// one passed by systemd socket activation. The socket file belongs to whoever created it: it is never
    /// removed. The server owns (closes) the socket.
    /// </summary>
    /// <param name="listener">A listening Unix stream socket.</param>
    /// <exception cref="InvalidOperationException">Called twice.</exception>
    public void Start(Socket listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("The server was already started.");
        }

        _listener = listener;
        Log.Listening(_logger, SocketPath);
        _completion = Task.Run(AcceptLoopAsync);
    }

    /// <summary>
    /// Drops the current frontend's connection, if any (its session ends as on a disconnect: the backend is
    /// reset), and keeps listening for the next one. For a backend that can no longer serve the session it
    /// has, e.g. a device that stopped after an internal fault: a frontend configured to reconnect (QEMU's
    /// <c>reconnect=</c>) starts a fresh session. Returns at once; thread-safe.
    /// </summary>
    /// <returns>Whether a frontend was connected.</returns>
    public bool DisconnectFrontend()
    {
        lock (_gate)
        {
            _current?.Stop();
            return _current is not null;
        }
    }

    /// <summary>Stops accepting, ends the current frontend's session and waits for both.</summary>
    public async Task StopAsync()
    {
        if (!_stopping.IsCancellationRequested)
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
        }

        lock (_gate)
        {
            _current?.Stop();
        }

        await _completion.ConfigureAwait(false);
    }

    /// <summary>
    /// Stops accepting, disconnects the current frontend (its device is reset), waits for everything to
    /// finish and removes the socket file. Idempotent.
    /// </summary>
    /// <returns>A task that completes when the server is down.</returns>
    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    /// <inheritdoc/>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>
    /// Probes the path (a stale socket is removed, a live one or a non-socket refused), binds and listens
    /// (<see cref="UnixSocketPath"/>). On stop only <see cref="RemoveSocketFile"/> removes <paramref name="path"/>,
    /// and only if it is still this socket (another server may have taken the path over).
    /// </summary>
    private static Socket Listen(string path, out UnixSocketPath.Identity identity)
    {
        UnixSocketPath.Error error = UnixSocketPath.Listen(path, Interop.Sys.SockStream, backlog: 4, mode: null, out int fd, out identity, out int errno);
        string detail = errno != 0 ? $" (errno {errno}: {System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)})" : string.Empty;
        switch (error)
        {
            case UnixSocketPath.Error.None:
                break;
            case UnixSocketPath.Error.InUse:
                throw new IOException($"{path} is in use by a live listener.");
            case UnixSocketPath.Error.NotASocket:
                throw new IOException($"{path} exists and is not a socket; refusing to replace it.");
            case UnixSocketPath.Error.InvalidPath:
                throw new IOException($"Cannot listen on {path}: not a valid Unix socket path (at most 107 bytes).");
            default:
                throw new IOException($"Cannot listen on {path}{detail}.");
        }

        try
        {
            return new Socket(new SafeSocketHandle(fd, ownsHandle: true));
        }
        catch (SocketException exception)
        {
            _ = Interop.Sys.Close(fd);
            UnixSocketPath.RemoveIfOurs(path, identity);
            throw new IOException($"Cannot listen on {path}: {exception.Message}", exception);
        }
    }

    private async Task AcceptLoopAsync()
    {
        Socket listener = _listener!;
        try
        {
            while (!_stopping.IsCancellationRequested)
            {
                Socket client;
                try
                {
                    client = await listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                catch (SocketException exception) when (exception.SocketErrorCode is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable or SocketError.ConnectionAborted)
                {
                    Log.ServerFailed(_logger, SocketPath, exception);
                    await Task.Delay(100, CancellationToken.None).ConfigureAwait(false);
                    continue;
                }

                await ServeAsync(client).ConfigureAwait(false);
            }
        }
#pragma warning disable CA1031 // A listener failure ends the server; it is logged and Completion completes.
        catch (Exception exception)
#pragma warning restore CA1031
        {
            Log.ServerFailed(_logger, SocketPath, exception);
        }
        finally
        {
            listener.Dispose();
            RemoveSocketFile();
            Log.Lifecycle(_logger, $"server on {SocketPath} stopped");
        }
    }

    private async Task ServeAsync(Socket client)
    {
        VhostUserConnection connection;
        try
        {
            connection = new VhostUserConnection(client, _backend, _logger);
        }
        catch (IOException exception)
        {
            Log.ServerFailed(_logger, SocketPath, exception);
            client.Dispose();
            return;
        }

        lock (_gate)
        {
            _current = connection;
            if (_stopping.IsCancellationRequested)
            {
                connection.Stop();
            }
        }

        Log.FrontendConnected(_logger, SocketPath);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                connection.Run();
            }
#pragma warning disable CA1031 // Run handles its own faults; anything left is logged, never fatal.
            catch (Exception exception)
#pragma warning restore CA1031
            {
                Log.ServerFailed(_logger, SocketPath, exception);
            }
            finally
            {
                done.SetResult();
            }
        })
        {
            IsBackground = true,
            Name = "vu-control",
        };
        thread.Start();
        await done.Task.ConfigureAwait(false);
        lock (_gate)
        {
            _current = null;
        }

        connection.Dispose();
        Interlocked.Increment(ref _served);
    }

    private void RemoveSocketFile() => UnixSocketPath.RemoveIfOurs(SocketPath, _socketIdentity);
}
