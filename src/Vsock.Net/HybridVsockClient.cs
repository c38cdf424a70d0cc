using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Vsock.Net;

/// <summary>
/// The host side of a hybrid vsock device (Firecracker, Cloud Hypervisor, rust-vmm's and this project's
/// vhost-user-vsock): connects to the device's Unix socket <c>uds_path</c>, writes <c>CONNECT port\n</c>
/// and reads <c>OK host_port\n</c>; afterwards the Unix socket carries the guest connection's bytes.
/// Owns the handshake only; the returned socket belongs to the caller.
/// </summary>
public static class HybridVsockClient
{
    /// <summary>Longest reply line accepted (<c>OK 4294967295\n</c> is 14 bytes).</summary>
    private const int MaxReplyLength = 64;

    /// <summary>The handshake timeout used when none is given: 10 seconds.</summary>
    public static readonly TimeSpan DefaultHandshakeTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Connects to guest port <paramref name="port"/> through the device at <paramref name="udsPath"/>.</summary>
    /// <param name="udsPath">The device's Unix socket (<c>uds_path</c>).</param>
    /// <param name="port">The guest's vsock port.</param>
    /// <param name="handshakeTimeout">Limit for reaching the device and its answer (default <see cref="DefaultHandshakeTimeout"/>).</param>
    /// <param name="cancellationToken">Cancels the handshake.</param>
    /// <returns>The connected Unix stream socket; no byte after the <c>OK</c> line has been read from it.</returns>
    /// <exception cref="HybridVsockConnectException">The device is unreachable, refused, timed out or answered nonsense.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static async Task<Socket> ConnectAsync(string udsPath, uint port, TimeSpan? handshakeTimeout = null, CancellationToken cancellationToken = default)
    {
        HybridVsockConnection connection = await ConnectWithPortAsync(udsPath, port, handshakeTimeout, cancellationToken).ConfigureAwait(false);
        return connection.Socket;
    }

    /// <summary>Like <see cref="ConnectAsync"/>, and also returns the host-side port the device assigned (the <c>OK</c> number).</summary>
    /// <param name="udsPath">The device's Unix socket.</param>
    /// <param name="port">The guest's vsock port.</param>
    /// <param name="handshakeTimeout">Limit for the handshake.</param>
    /// <param name="cancellationToken">Cancels the handshake.</param>
    /// <returns>The socket and the host port.</returns>
    public static async Task<HybridVsockConnection> ConnectWithPortAsync(string udsPath, uint port, TimeSpan? handshakeTimeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(udsPath);
        TimeSpan timeout = handshakeTimeout ?? DefaultHandshakeTimeout;
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        }

        using var timeoutSource = new CancellationTokenSource(timeout);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeoutSource.Token);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(udsPath), linked.Token).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                throw new HybridVsockConnectException(HybridVsockConnectError.DeviceUnreachable, $"cannot reach the hybrid vsock device at {udsPath}: {e.Message}", e);
            }

            byte[] command = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"CONNECT {port}\n"));
            await socket.SendAsync(command, SocketFlags.None, linked.Token).ConfigureAwait(false);
            string? reply = await ReadLineAsync(socket, linked.Token).ConfigureAwait(false);
            if (reply is null)
            {
                throw new HybridVsockConnectException(HybridVsockConnectError.Refused, $"the guest refused vsock port {port} (the device at {udsPath} closed the connection without OK: nothing listens there?)");
            }

            if (!TryParseOk(reply, out uint hostPort))
            {
                throw new HybridVsockConnectException(HybridVsockConnectError.UnexpectedReply, $"the device at {udsPath} answered '{Printable(reply)}' to CONNECT {port}, not 'OK <port>'");
            }

            return new HybridVsockConnection(socket, hostPort);
        }
        catch (OperationCanceledException e) when (timeoutSource.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            throw new HybridVsockConnectException(HybridVsockConnectError.TimedOut, $"CONNECT {port} through {udsPath} got no answer within {timeout.TotalSeconds:0.###} s", e);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new HybridVsockConnectException(HybridVsockConnectError.Refused, $"the device at {udsPath} dropped CONNECT {port}: {e.Message}", e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Connects and wraps the socket in a <see cref="NetworkStream"/> that owns it.</summary>
    /// <param name="udsPath">The device's Unix socket.</param>
    /// <param name="port">The guest's vsock port.</param>
    /// <param name="handshakeTimeout">Limit for the handshake.</param>
    /// <param name="cancellationToken">Cancels the handshake.</param>
    /// <returns>The stream.</returns>
    public static async Task<NetworkStream> ConnectStreamAsync(string udsPath, uint port, TimeSpan? handshakeTimeout = null, CancellationToken cancellationToken = default) =>
        new(await ConnectAsync(udsPath, port, handshakeTimeout, cancellationToken).ConfigureAwait(false), ownsSocket: true);

    /// <summary>Parses <c>OK n</c> (the line without its <c>\n</c>).</summary>
    /// <param name="line">The reply line.</param>
    /// <param name="hostPort">The number.</param>
    /// <returns>Whether the line is <c>OK</c>, one space and a 32-bit decimal number.</returns>
    public static bool TryParseOk(string line, out uint hostPort)
    {
        hostPort = 0;
        return line.StartsWith("OK ", StringComparison.Ordinal)
            && line.Length > 3
            && line.AsSpan(3).IndexOfAnyExceptInRange('0', '9') < 0
            && uint.TryParse(line.AsSpan(3), NumberStyles.None, CultureInfo.InvariantCulture, out hostPort);
    }

    /// <summary>Reads one line one byte at a time (so nothing after it is consumed); null at end of stream before any '\n'.</summary>
    private static async Task<string?> ReadLineAsync(Socket socket, CancellationToken cancellationToken)
    {
        byte[] line = new byte[MaxReplyLength];
        int length = 0;
        while (true)
        {
            int n = await socket.ReceiveAsync(line.AsMemory(length, 1), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                return null;
            }

            if (line[length] == (byte)'\n')
            {
                return Encoding.ASCII.GetString(line, 0, length);
            }

            if (++length == line.Length)
            {
                return Encoding.ASCII.GetString(line, 0, length);
            }
        }
    }

    private static string Printable(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (char c in text)
        {
            builder.Append(c is >= ' ' and < (char)127 ? c : '?');
        }

        return builder.ToString();
    }
}
