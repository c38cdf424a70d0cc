using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using VhostUserVsock.Cli;
using VhostUserVsock.Configuration;

namespace VhostUserVsock.Control;

/// <summary>
/// The control socket (<c>--control PATH</c>): a Unix stream socket, mode 0600 (bound, restricted, then
/// listening, so nobody else connects in between), answering one JSON request per line with one JSON reply per
/// line (<see cref="ControlHandler"/>). Owns the listener, its clients and the socket file (removed on dispose).
/// Must never let a client hold unbounded memory (lines over <see cref="MaxLineBytes"/> end the client) or more
/// than <see cref="MaxClients"/> clients at once.
/// </summary>
public sealed partial class ControlServer : IAsyncDisposable
{
    /// <summary>The longest request line.</summary>
    public const int MaxLineBytes = 4096;

    /// <summary>The most clients served at once; more wait in the backlog.</summary>
    public const int MaxClients = 8;

    private readonly OwnerOnlySocket _socket;
    private readonly Socket _listener;
    private readonly ControlHandler _handler;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _slots = new(MaxClients);
    private readonly Task _accepting;

    private ControlServer(OwnerOnlySocket socket, ControlHandler handler, ILogger logger)
    {
        Path = socket.Path;
        _socket = socket;
        _listener = socket.Listener;
        _handler = handler;
        _logger = logger;
        _accepting = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The socket path.</summary>
    public string Path { get; }

    /// <summary>Binds <paramref name="path"/> (a stale socket there is replaced), restricts it to the owner and listens.</summary>
    /// <param name="path">The socket path.</param>
    /// <param name="registry">The running VMs.</param>
    /// <param name="logger">Where to log.</param>
    /// <returns>The running server.</returns>
    /// <exception cref="IOException">The path cannot be bound.</exception>
    public static ControlServer Start(string path, VmRegistry registry, ILogger logger)
    {
        OwnerOnlySocket socket = OwnerOnlySocket.Listen(path, "control socket");
        LogListening(logger, path);
        return new ControlServer(socket, new ControlHandler(registry), logger);
    }

    /// <summary>Stops accepting, ends the clients and removes the socket file.</summary>
    /// <returns>A task that completes when done.</returns>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _socket.Dispose();
        await _accepting.ConfigureAwait(false);
        _stop.Dispose();
    }

    private Task AcceptLoopAsync() =>
        BoundedAcceptLoop.RunAsync(_listener, _slots, ServeAsync, message => LogAcceptFailed(_logger, message), _stop.Token);

    private async Task ServeAsync(Socket client)
    {
        using (client)
        {
            try
            {
                byte[] buffer = new byte[MaxLineBytes + 1];
                int filled = 0;
                while (!_stop.IsCancellationRequested)
                {
                    int newline = Array.IndexOf(buffer, (byte)'\n', 0, filled);
                    if (newline < 0)
                    {
                        if (filled > MaxLineBytes)
                        {
                            await SendAsync(client, "{\"ok\":false,\"error\":\"request line too long\"}").ConfigureAwait(false);
                            return;
                        }

                        int n = await client.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, _stop.Token).ConfigureAwait(false);
                        if (n == 0)
                        {
                            return;
                        }

                        filled += n;
                        continue;
                    }

                    string line = Encoding.UTF8.GetString(buffer, 0, newline).TrimEnd('\r');
                    Buffer.BlockCopy(buffer, newline + 1, buffer, 0, filled - newline - 1);
                    filled -= newline + 1;
                    if (line.Length > 0)
                    {
                        await SendAsync(client, await _handler.HandleAsync(line).ConfigureAwait(false)).ConfigureAwait(false);
                    }
                }
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // The client went away, or the daemon stops.
            }
            finally
            {
                _slots.Release();
            }
        }
    }

    private async Task SendAsync(Socket client, string reply)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(reply + "\n");
        int sent = 0;
        while (sent < bytes.Length)
        {
            sent += await client.SendAsync(bytes.AsMemory(sent), SocketFlags.None, _stop.Token).ConfigureAwait(false);
        }
    }

    [LoggerMessage(EventId = 60, Level = LogLevel.Information, Message = "Control socket listening on {Path} (mode 0600)")]
    private static partial void LogListening(ILogger logger, string path);

    [LoggerMessage(EventId = 61, Level = LogLevel.Warning, Message = "Control socket: accept failed: {Reason}")]
    private static partial void LogAcceptFailed(ILogger logger, string reason);
}
