using System.Globalization;
using System.Net.Sockets;
using Virtio.Vsock;

namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// A host-initiated hybrid-vsock connection whose <c>CONNECT &lt;port&gt;\n</c> line has been read:
/// the guest port asked for, the connected host socket, and the stream bytes that arrived right
/// after the <c>\n</c>. Owns the socket until <see cref="Accept"/> succeeds (then the caller does) or
/// until <see cref="Reject"/> / <see cref="Dispose"/> closes it. It must never block (the reply is
/// one non-blocking send), never throw for a vanished peer (results are values), and never write
/// anything but the single <c>OK &lt;local_port&gt;\n</c> reply.
/// </summary>
/// <remarks>
/// <para>Engine flow: take the request with <see cref="HybridVsockListener.TryTake"/>, allocate a
/// host-side local port, send the guest a REQUEST to <see cref="Port"/>. When the guest answers
/// RESPONSE, call <see cref="Accept"/>(localPort), prepare the socket with
/// <see cref="UnixSocketIo.ConfigureForDataPath"/>, then deliver <see cref="InitialData"/> to the guest
/// before anything read from <see cref="Socket"/> later. When the guest answers RST (nobody listens)
/// or does not answer in time, call <see cref="Reject"/>: the host sees the socket close without
/// an <c>OK</c>, as with Firecracker.</para>
/// <para>Thread-safe: <see cref="Accept"/>, <see cref="Reject"/> and <see cref="Dispose"/> may race;
/// exactly one wins.</para>
/// </remarks>
internal sealed class HostConnectRequest : IDisposable
{
    private const int Pending = 0;
    private const int Accepted = 1;
    private const int Closed = 2;

    private int _state;

    /// <summary>Creates a request around an accepted socket. Normally only the listener makes these.</summary>
    /// <param name="socket">The connected host socket; the request owns it.</param>
    /// <param name="type">The socket type (stream or seqpacket).</param>
    /// <param name="port">The guest port from the <c>CONNECT</c> line.</param>
    /// <param name="initialData">Bytes received after the <c>\n</c> (stream only); may be empty.</param>
    public HostConnectRequest(Socket socket, VsockType type, uint port, ReadOnlyMemory<byte> initialData)
    {
        ArgumentNullException.ThrowIfNull(socket);
        Socket = socket;
        Type = type;
        Port = port;
        InitialData = initialData;
    }

    /// <summary>The guest port the host asked to connect to.</summary>
    public uint Port { get; }

    /// <summary>The socket type: stream (from <c>uds_path</c>) or seqpacket (from the seqpacket listener).</summary>
    public VsockType Type { get; }

    /// <summary>
    /// The connected host socket. The request owns it until <see cref="Accept"/> succeeds; after
    /// that the caller owns it and must dispose it.
    /// </summary>
    public Socket Socket { get; }

    /// <summary>
    /// Stream bytes the host sent right after the <c>\n</c> that were read with the command line (at
    /// most 31 bytes; always empty for seqpacket). They come before anything still in the socket and
    /// must be delivered to the guest first.
    /// </summary>
    public ReadOnlyMemory<byte> InitialData { get; }

    /// <summary>True once <see cref="Accept"/> succeeded.</summary>
    public bool IsAccepted => Volatile.Read(ref _state) == Accepted;

    /// <summary>True once the request was rejected, disposed, or its accept failed.</summary>
    public bool IsClosed => Volatile.Read(ref _state) == Closed;

    /// <summary>
    /// The guest accepted: sends <c>OK &lt;localPort&gt;\n</c> (one message for seqpacket) without
    /// blocking, and hands the socket to the caller.
    /// </summary>
    /// <param name="localPort">The host-side port the device allocated for this connection.</param>
    /// <returns>
    /// Ok: the caller now owns <see cref="Socket"/>. Anything else: the reply could not be sent
    /// whole (the host went away), the socket is closed, and the guest should get RST. Calling it
    /// again, or after <see cref="Reject"/>, returns <see cref="UnixIoStatus.SocketClosed"/>.
    /// </returns>
    public UnixIoResult Accept(uint localPort)
    {
        if (Interlocked.CompareExchange(ref _state, Accepted, Pending) != Pending)
        {
            return UnixIoResult.Failure(UnixIoStatus.SocketClosed, 0);
        }

        Span<byte> reply = stackalloc byte[16];
        "OK "u8.CopyTo(reply);
        localPort.TryFormat(reply[3..], out int digits, default, CultureInfo.InvariantCulture);
        reply[3 + digits] = (byte)'\n';
        ReadOnlySpan<byte> line = reply[..(4 + digits)];
        UnixIoResult sent = Type == VsockType.SeqPacket
            ? UnixSocketIo.SendMessage(Socket, line)
            : UnixSocketIo.Send(Socket, line);
        if (sent.IsOk && sent.Bytes == line.Length)
        {
            return sent;
        }

        Volatile.Write(ref _state, Closed);
        Socket.Dispose();
        // A partial send of 14 bytes to a fresh socket cannot really happen; treat it as would-block.
        return sent.IsOk ? UnixIoResult.Failure(UnixIoStatus.WouldBlock, Interop.Errors.EAGAIN) : sent;
    }

    /// <summary>The guest refused (RST) or did not answer: closes the socket without a reply.</summary>
    public void Reject()
    {
        if (Interlocked.CompareExchange(ref _state, Closed, Pending) == Pending)
        {
            Socket.Dispose();
        }
    }

    /// <summary>Closes the socket unless <see cref="Accept"/> succeeded (then the caller owns it).</summary>
    public void Dispose() => Reject();

    /// <inheritdoc/>
    public override string ToString() =>
        $"CONNECT {Port} ({Type}, {InitialData.Length} initial bytes, {(IsAccepted ? "accepted" : IsClosed ? "closed" : "pending")})";
}
