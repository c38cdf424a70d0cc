using System.Globalization;
using System.Net.Sockets;
using System.Text;
using VsockLoad.Guest;
using VsockLoad.Report;

namespace VsockLoad.Host;

/// <summary>
/// One host-side Unix stream socket of the load generator, non-blocking, driven from the single loop:
/// either accepted on <c>&lt;uds_path&gt;_&lt;port&gt;</c> (guest-initiated) or connected to
/// <c>uds_path</c> with the <c>CONNECT &lt;port&gt;\n</c> / <c>OK &lt;n&gt;\n</c> handshake. Sends the
/// pattern in fixed-size writes and checks every byte it reads. Owns the socket.
/// </summary>
internal sealed class HostEnd : IDisposable
{
    private readonly byte[] _line = new byte[64];
    private int _lineLength;

    private HostEnd(Socket socket, bool awaitingOk)
    {
        Socket = socket;
        AwaitingOk = awaitingOk;
        socket.Blocking = false;
        Fd = (int)socket.Handle;
    }

    /// <summary>The socket.</summary>
    public Socket Socket { get; }

    /// <summary>The descriptor (for poll).</summary>
    public int Fd { get; }

    /// <summary>Whether the <c>OK</c> line is still due.</summary>
    public bool AwaitingOk { get; private set; }

    /// <summary>The port from <c>OK &lt;n&gt;</c>: the host port the guest sees.</summary>
    public uint HostPort { get; private set; }

    /// <summary>Pattern seed of the bytes the host sends.</summary>
    public int TxSeed { get; set; }

    /// <summary>Pattern seed of the bytes the host expects.</summary>
    public int RxSeed { get; set; }

    /// <summary>Stream offset of the next byte the host sends.</summary>
    public long TxOffset { get; set; }

    /// <summary>Stream offset the host sends up to.</summary>
    public long TxTarget { get; set; }

    /// <summary>Bytes per write.</summary>
    public int WriteSize { get; set; } = 64 * 1024;

    /// <summary>Stream offset of the next byte the host expects.</summary>
    public long RxOffset { get; private set; }

    /// <summary>The peer closed (end of stream or error).</summary>
    public bool PeerClosed { get; private set; }

    /// <summary>Whether this end wants POLLOUT.</summary>
    public bool WantsWrite => !AwaitingOk && !PeerClosed && TxOffset < TxTarget;

    /// <summary>Scenario data (e.g. the guest connection).</summary>
    public GuestConnection? Guest { get; set; }

    /// <summary>Wraps a socket accepted from a listener.</summary>
    /// <param name="socket">The socket.</param>
    /// <returns>The end.</returns>
    public static HostEnd Accepted(Socket socket) => new(socket, awaitingOk: false);

    /// <summary>Connects to the backend's <paramref name="udsPath"/> and sends <c>CONNECT port</c>.</summary>
    /// <param name="udsPath">The hybrid vsock socket.</param>
    /// <param name="port">The guest port.</param>
    /// <returns>The end, awaiting <c>OK</c>.</returns>
    public static HostEnd Connect(string udsPath, uint port)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(udsPath));
            socket.Send(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"CONNECT {port}\n")));
            return new HostEnd(socket, awaitingOk: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Reads what is available: the OK line first, then payload, each byte checked.</summary>
    /// <param name="buffer">Scratch space.</param>
    /// <param name="checks">Where violations go.</param>
    /// <returns>Payload bytes read (0 when none or closed).</returns>
    public int Read(Span<byte> buffer, Checks checks)
    {
        int total = 0;
        while (!PeerClosed)
        {
            int read = Socket.Receive(buffer, SocketFlags.None, out SocketError error);
            if (error == SocketError.WouldBlock)
            {
                break;
            }

            if (error != SocketError.Success || read == 0)
            {
                PeerClosed = true;
                break;
            }

            Span<byte> data = buffer[..read];
            if (AwaitingOk)
            {
                data = TakeLine(data, checks);
            }

            if (data.IsEmpty)
            {
                continue;
            }

            int mismatch = Pattern.FirstMismatch(data, RxOffset, RxSeed);
            if (mismatch >= 0)
            {
                checks.Add(Violation.DataMismatch, $"host port {HostPort} stream offset {RxOffset + mismatch}: got {data[mismatch]}, expected {Pattern.At(RxOffset + mismatch, RxSeed)}");
            }

            checks.CheckedBytes += data.Length;
            RxOffset += data.Length;
            total += data.Length;
            if (read < buffer.Length)
            {
                break;
            }
        }

        return total;
    }

    /// <summary>Writes the pattern up to <see cref="TxTarget"/> until the socket is full.</summary>
    /// <param name="scratch">A buffer of at least <see cref="WriteSize"/> bytes.</param>
    /// <returns>Bytes written.</returns>
    public int Write(Span<byte> scratch)
    {
        int total = 0;
        while (WantsWrite)
        {
            long inWrite = WriteSize - (TxOffset % WriteSize);
            int length = (int)Math.Min(inWrite, TxTarget - TxOffset);
            Span<byte> chunk = scratch[..length];
            Pattern.Fill(chunk, TxOffset, TxSeed);
            int sent = Socket.Send(chunk, SocketFlags.None, out SocketError error);
            if (error == SocketError.WouldBlock)
            {
                break;
            }

            if (error != SocketError.Success)
            {
                PeerClosed = true;
                break;
            }

            TxOffset += sent;
            total += sent;
        }

        return total;
    }

    /// <inheritdoc/>
    public void Dispose() => Socket.Dispose();

    private Span<byte> TakeLine(Span<byte> data, Checks checks)
    {
        int newline = data.IndexOf((byte)'\n');
        int take = newline >= 0 ? newline + 1 : data.Length;
        if (_lineLength + take > _line.Length)
        {
            checks.Add(Violation.HostSocket, "no OK line within 64 bytes");
            PeerClosed = true;
            return [];
        }

        data[..take].CopyTo(_line.AsSpan(_lineLength));
        _lineLength += take;
        if (newline < 0)
        {
            return [];
        }

        string line = Encoding.ASCII.GetString(_line, 0, _lineLength - 1);
        if (!line.StartsWith("OK ", StringComparison.Ordinal) || !uint.TryParse(line.AsSpan(3), NumberStyles.None, CultureInfo.InvariantCulture, out uint port))
        {
            checks.Add(Violation.HostSocket, $"CONNECT answered with '{line}'");
            PeerClosed = true;
            return [];
        }

        HostPort = port;
        AwaitingOk = false;
        return data[take..];
    }
}
