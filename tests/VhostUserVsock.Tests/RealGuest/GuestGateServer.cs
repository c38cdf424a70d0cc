using System.Net;
using System.Net.Sockets;
using System.Text;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// The host end of the guests' <c>gate KEY</c> helper (tests/guest/build-vsock-suite.sh): a TCP
/// listener on 127.0.0.1 (a random free port), which guests reach as 10.0.2.2 through QEMU user
/// networking. Each connection sends one line (the key); the gate answers <c>go</c> once
/// the decide function given to the constructor says the awaited condition holds, or <c>no</c> when it fails or times out,
/// and closes. Used to start a guest's client only after the other guest's server listens. Never
/// touches vsock.
/// </summary>
public sealed class GuestGateServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Func<string, CancellationToken, Task<bool>> _decide;
    private readonly Task _accepting;
    private readonly List<string> _log = [];

    /// <summary>Starts listening.</summary>
    /// <param name="decide">Waits for the condition named by a key; true: go.</param>
    public GuestGateServer(Func<string, CancellationToken, Task<bool>> decide)
    {
        _decide = decide;
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The port on 127.0.0.1 (the guests' <c>vsocktest.gate=</c>).</summary>
    public int Port { get; }

    /// <summary>The keys asked for and the answers, in order (for failure messages).</summary>
    public IReadOnlyList<string> Log
    {
        get
        {
            lock (_log)
                return [.. _log];
        }
    }

    /// <summary>Stops listening and waits for the open requests to end.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        try
        {
            await _accepting.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }

    /// <summary>A free TCP port on 127.0.0.1 right now (for a QEMU <c>hostfwd</c>).</summary>
    public static int FreeLoopbackPort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        try
        {
            return ((IPEndPoint)l.LocalEndpoint).Port;
        }
        finally
        {
            l.Stop();
        }
    }

    private async Task AcceptLoopAsync()
    {
        var open = new List<Task>();
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false);
                open.Add(Task.Run(() => ServeAsync(client)));
                open.RemoveAll(t => t.IsCompleted);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
        await Task.WhenAll(open).ConfigureAwait(false);
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            string key = "?";
            string answer = "no";
            try
            {
                var stream = client.GetStream();
                using var reader = new StreamReader(stream, Encoding.ASCII, false, 256, leaveOpen: true);
                key = (await reader.ReadLineAsync(_stop.Token).ConfigureAwait(false))?.Trim() ?? "";
                answer = await _decide(key, _stop.Token).ConfigureAwait(false) ? "go" : "no";
                await stream.WriteAsync(Encoding.ASCII.GetBytes(answer + "\n"), _stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                answer = "error: " + e.Message;
            }
            lock (_log)
                _log.Add($"{key} -> {answer}");
        }
    }
}
