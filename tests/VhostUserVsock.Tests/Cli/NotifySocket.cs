using System.Net.Sockets;
using System.Text;

namespace VhostUserVsock.Tests.Cli;

/// <summary>Plays systemd's side of <c>NOTIFY_SOCKET</c>: a Unix datagram socket that collects the daemon's notifications.</summary>
internal sealed class NotifySocket : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);

    public NotifySocket(string path)
    {
        Path = path;
        _socket.Bind(new UnixDomainSocketEndPoint(path));
    }

    public string Path { get; }

    /// <summary>Waits for the next notification (a datagram); fails the test after <paramref name="timeout"/>.</summary>
    public async Task<string> ReceiveAsync(TimeSpan timeout, Func<string> context)
    {
        byte[] buffer = new byte[4096];
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            int n = await _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            return Encoding.UTF8.GetString(buffer, 0, n);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"no notification within {timeout.TotalSeconds} s; {context()}");
            throw;
        }
    }

    public void Dispose() => _socket.Dispose();
}
