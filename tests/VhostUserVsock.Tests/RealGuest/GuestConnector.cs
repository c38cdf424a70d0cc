using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Virtio.Vsock.Backends.Unix;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// Host-initiated connections to a guest port through the daemon's hybrid-vsock listener:
/// connect to <c>uds-path</c> (SOCK_STREAM) or <c>uds-path.seqpacket</c> (SOCK_SEQPACKET), send
/// <c>CONNECT &lt;port&gt;\n</c>, expect <c>OK &lt;local-port&gt;\n</c>.
/// </summary>
public static class GuestConnector
{
    private const int MaxReply = 32;

    /// <summary>Connects and returns what happened; never throws for a refused or reset connection.</summary>
    public static async Task<GuestConnectAttempt> TryConnectAsync(string udsPath, uint port, SocketType type, CancellationToken cancellationToken)
    {
        var path = type == SocketType.Seqpacket ? UnixBackendPaths.SeqPacketListenerPath(udsPath) : udsPath;
        var socket = new Socket(AddressFamily.Unix, type, ProtocolType.Unspecified);
        var clock = Stopwatch.StartNew();
        string failure;
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
            var command = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"CONNECT {port}\n"));
            await HostStreams.SendAllAsync(socket, command, cancellationToken).ConfigureAwait(false);
            var reply = new byte[MaxReply];
            int got = 0;
            if (type == SocketType.Seqpacket)
            {
                got = await socket.ReceiveAsync(reply, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                // byte by byte: nothing after the line may be consumed (the guest may send at once)
                while (got < MaxReply)
                {
                    int n = await socket.ReceiveAsync(reply.AsMemory(got, 1), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                    if (n == 0)
                        break;
                    got += n;
                    if (reply[got - 1] == (byte)'\n')
                        break;
                }
            }
            var text = Encoding.ASCII.GetString(reply, 0, got);
            if (got == 0)
            {
                failure = "closed without OK";
            }
            else if (text.StartsWith("OK ", StringComparison.Ordinal) && text.EndsWith('\n')
                && uint.TryParse(text.AsSpan(3, text.Length - 4), NumberStyles.None, CultureInfo.InvariantCulture, out uint local))
            {
                return new GuestConnectAttempt(socket, local, null, clock.Elapsed);
            }
            else
            {
                failure = $"bad reply '{text.ReplaceLineEndings("\\n")}'";
            }
        }
        catch (SocketException e)
        {
            failure = e.SocketErrorCode == SocketError.ConnectionReset ? "reset (ConnectionReset)" : $"socket error {e.SocketErrorCode}: {e.Message}";
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        var elapsed = clock.Elapsed;
        socket.Dispose();
        return new GuestConnectAttempt(null, 0, failure, elapsed);
    }

    /// <summary>Connects or throws <see cref="InvalidOperationException"/> saying why not.</summary>
    public static async Task<GuestConnectAttempt> ConnectAsync(string udsPath, uint port, SocketType type, CancellationToken cancellationToken)
    {
        var attempt = await TryConnectAsync(udsPath, port, type, cancellationToken).ConfigureAwait(false);
        if (!attempt.Connected)
            throw new InvalidOperationException($"host CONNECT {port} ({type}) via {udsPath} failed after {attempt.Elapsed.TotalMilliseconds:0} ms: {attempt.Failure}");
        return attempt;
    }
}
