using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using VhostUserVsock.Cli;
using VhostUserVsock.Configuration;

namespace VhostUserVsock.Metrics;

/// <summary>
/// Serves <c>GET /metrics</c> over HTTP/1.x (one request per connection, then close) on a loopback TCP port or a
/// Unix socket (mode 0600), with the body from a <see cref="MeterCollector"/>. Owns the listener, its clients and,
/// for <c>unix:</c>, the socket file (removed on dispose). Must never let a client hold more than
/// <see cref="MaxRequestBytes"/> of request, more than <see cref="MaxClients"/> connections at once, or a
/// connection longer than <see cref="RequestTimeout"/>.
/// </summary>
public sealed partial class MetricsEndpoint : IAsyncDisposable
{
    /// <summary>The longest request head read.</summary>
    public const int MaxRequestBytes = 8192;

    /// <summary>The most clients served at once; more wait in the backlog.</summary>
    public const int MaxClients = 4;

    /// <summary>How long a client has to send its request and read the reply.</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(10);

    private readonly Socket _listener;
    private readonly OwnerOnlySocket? _unixSocket;
    private readonly MeterCollector _collector;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _slots = new(MaxClients);
    private readonly Task _accepting;

    private MetricsEndpoint(MetricsAddress address, Socket listener, OwnerOnlySocket? unixSocket, MeterCollector collector, ILogger logger)
    {
        Address = address;
        _listener = listener;
        _unixSocket = unixSocket;
        _collector = collector;
        _logger = logger;
        _accepting = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The address served.</summary>
    public MetricsAddress Address { get; }

    /// <summary>The bound endpoint (with the port chosen when <c>:0</c> was given).</summary>
    public string BoundAddress => Address.UnixPath is { } path ? "unix:" + path : _listener.LocalEndPoint?.ToString() ?? Address.Text;

    /// <summary>Binds and listens.</summary>
    /// <param name="address">Where.</param>
    /// <param name="collector">Renders the metrics.</param>
    /// <param name="logger">Where to log.</param>
    /// <returns>The running endpoint.</returns>
    /// <exception cref="IOException">The address cannot be bound.</exception>
    public static MetricsEndpoint Start(MetricsAddress address, MeterCollector collector, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(collector);
        ArgumentNullException.ThrowIfNull(logger);
        if (address.UnixPath is { } path)
        {
            OwnerOnlySocket socket = OwnerOnlySocket.Listen(path, "metrics socket");
            var unixEndpoint = new MetricsEndpoint(address, socket.Listener, socket, collector, logger);
            LogListening(logger, unixEndpoint.BoundAddress);
            return unixEndpoint;
        }

        var listener = new Socket(address.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(address.EndPoint);
            listener.Listen(16);
        }
        catch (SocketException ex)
        {
            listener.Dispose();
            throw new IOException($"cannot serve metrics on {address.Text}: {ex.Message}", ex);
        }

        var endpoint = new MetricsEndpoint(address, listener, null, collector, logger);
        LogListening(logger, endpoint.BoundAddress);
        return endpoint;
    }

    /// <summary>Stops accepting, ends the clients and removes a Unix socket file.</summary>
    /// <returns>A task that completes when done.</returns>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_unixSocket is not null)
        {
            _unixSocket.Dispose();
        }
        else
        {
            _listener.Dispose();
        }

        await _accepting.ConfigureAwait(false);
        _stop.Dispose();
    }

    private Task AcceptLoopAsync() =>
        BoundedAcceptLoop.RunAsync(_listener, _slots, ServeAsync, message => LogAcceptFailed(_logger, message), _stop.Token);

    private async Task ServeAsync(Socket client)
    {
        using (client)
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token))
        {
            timeout.CancelAfter(RequestTimeout);
            try
            {
                string? target = await ReadRequestTargetAsync(client, timeout.Token).ConfigureAwait(false);
                (string status, string body) = target switch
                {
                    null => ("400 Bad Request", "bad request\n"),
                    "/metrics" or "/" => ("200 OK", _collector.Collect()),
                    _ => ("404 Not Found", "not found: try /metrics\n"),
                };
                byte[] payload = Encoding.UTF8.GetBytes(body);
                string contentType = status[0] == '2' ? PrometheusText.ContentType : "text/plain; charset=utf-8";
                byte[] head = Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\nContent-Type: {contentType}\r\nContent-Length: {payload.Length}\r\nConnection: close\r\n\r\n");
                await SendAllAsync(client, head, timeout.Token).ConfigureAwait(false);
                await SendAllAsync(client, payload, timeout.Token).ConfigureAwait(false);
                client.Shutdown(SocketShutdown.Send);
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // The client went away or was too slow, or the daemon stops.
            }
            finally
            {
                _slots.Release();
            }
        }
    }

    /// <summary>Reads the request head; returns the path of a <c>GET</c> (query removed), or null when malformed.</summary>
    private static async Task<string?> ReadRequestTargetAsync(Socket client, CancellationToken token)
    {
        byte[] buffer = new byte[MaxRequestBytes];
        int filled = 0;
        while (filled < buffer.Length)
        {
            int n = await client.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, token).ConfigureAwait(false);
            if (n == 0)
            {
                return null;
            }

            filled += n;
            if (buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8) >= 0 || buffer.AsSpan(0, filled).IndexOf("\n\n"u8) >= 0)
            {
                string line = Encoding.ASCII.GetString(buffer, 0, buffer.AsSpan(0, filled).IndexOf((byte)'\n')).TrimEnd('\r');
                string[] parts = line.Split(' ');
                if (parts.Length != 3 || parts[0] != "GET" || !parts[2].StartsWith("HTTP/1.", StringComparison.Ordinal))
                {
                    return null;
                }

                int query = parts[1].IndexOf('?', StringComparison.Ordinal);
                return query < 0 ? parts[1] : parts[1][..query];
            }
        }

        return null;
    }

    private static async Task SendAllAsync(Socket client, byte[] bytes, CancellationToken token)
    {
        int sent = 0;
        while (sent < bytes.Length)
        {
            sent += await client.SendAsync(bytes.AsMemory(sent), SocketFlags.None, token).ConfigureAwait(false);
        }
    }

    [LoggerMessage(EventId = 70, Level = LogLevel.Information, Message = "Metrics (Prometheus text, meter VirtioVsock) served on {Address}/metrics")]
    private static partial void LogListening(ILogger logger, string address);

    [LoggerMessage(EventId = 71, Level = LogLevel.Warning, Message = "Metrics endpoint: accept failed: {Reason}")]
    private static partial void LogAcceptFailed(ILogger logger, string reason);
}
