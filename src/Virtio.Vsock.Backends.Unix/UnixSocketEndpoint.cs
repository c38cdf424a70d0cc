using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// The host side of one vsock connection carried by a non-blocking Unix socket (SOCK_STREAM or
/// SOCK_SEQPACKET), for <see cref="UnixSocketBackend"/>. Payload moves between the socket and guest
/// memory with one copy: TX payload is sent straight from the guest's buffers (one gathering
/// <c>sendmsg</c>), RX data is received straight into the guest's RX buffer.
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> the socket (closes it), its watch in the device loop's epoll set
/// (<see cref="IVsockFdPoller"/>), for SEQPACKET one <see cref="SeqPacketMessageReader"/> and one
/// <see cref="SeqPacketMessageWriter"/> (at most one partial message each way, bounded), and for a
/// host-initiated stream the few bytes that followed the <c>CONNECT</c> line (delivered to the guest
/// before anything else).</para>
/// <para><b>Must never:</b> block (every call is a non-blocking system call; readiness comes from one
/// request to the device loop's epoll), busy-loop (an idle connection is one disarmed epoll entry), allocate or throw
/// on the data path, buffer guest data beyond a partial SEQPACKET message (a stream write that does
/// not fit returns fewer bytes and the connection keeps the rest), or let guest data reach a
/// host-initiated socket before the <c>OK &lt;port&gt;\n</c> reply (writes report WouldBlock until
/// <see cref="CompleteReply"/>).</para>
/// <para><b>Threading:</b> the <see cref="IVsockEndpoint"/> methods run on the device loop;
/// <see cref="CompleteReply"/> and <see cref="Kill"/> come from the backend's threads; readiness
/// callbacks come from the device loop: the state they share is behind <c>_gate</c> or volatile.</para>
/// <para><b>Mapping:</b> receive end of stream is <see cref="EndpointStatus.EndOfStream"/> when the host
/// peer only shut down sending, <see cref="EndpointStatus.Closed"/> when the socket is shut both ways
/// (POLLHUP: the peer closed); a reset or EPIPE is <see cref="EndpointStatus.Closed"/>; other failures are
/// <see cref="EndpointStatus.Error"/>. AF_UNIX has no RST: <see cref="Close"/> with abort closes the
/// socket like an orderly close (the host peer sees ECONNRESET only if bytes it sent were still unread).
/// AF_UNIX SEQPACKET has no MSG_EOR either: messages from the host carry EOM only, and a guest's EOR
/// is not forwarded (the message boundary is).</para>
/// </remarks>
internal sealed partial class UnixSocketEndpoint : IVsockEndpoint, IVsockFdHandler
{
    /// <summary>The most guest buffers gathered into one <c>sendmsg</c> / <c>recvmsg</c>.</summary>
    private const int MaxGather = 32;

    // Buffers one sendmsg of a TX run gathers (a run is at most 16 packets, usually one buffer each).
    private const int MaxRunGather = 64;

    // Dropping what the host peer queued before the guest's SHUT_RD: 16 KiB per recvmsg, at most 4 MiB in all
    // (a peer's send buffer is at most net.core.wmem_max; the default is 208 KiB).
    private const int DiscardChunk = 16 * 1024;
    private const int MaxDiscardReads = 256;

    private readonly UnixSocketBackend _owner;
    private readonly Socket _socket;
    private readonly SeqPacketMessageReader? _reader;
    private readonly SeqPacketMessageWriter? _writer;
    private readonly object _gate = new();
    private IVsockFdWatch? _registration;
    private ReadOnlyMemory<byte> _initial;
    private volatile IVsockEndpointEvents? _events;
    private volatile bool _replyPending;
    private volatile bool _killed;
    private bool _writableWanted;

    // A stream read got fewer bytes than asked since the last readable delivery, which carried no hang-up: the socket
    // is drained, and whatever arrives later is a new edge, so the next read can say WouldBlock without recvmsg.
    private volatile bool _drained;

    // The peer hung up (or the socket failed): every read goes to the socket until it says so.
    private bool _hangUpSeen;
    private bool _shutdownDeferred;
    private bool _closeDeferred;
    private int _closed;
    private int _socketClosed;

    private UnixSocketEndpoint(UnixSocketBackend owner, Socket socket, VsockType type, ReadOnlyMemory<byte> initialData, bool replyPending, int maxMessageSize)
    {
        _owner = owner;
        _socket = socket;
        Type = type;
        _initial = initialData;
        _replyPending = replyPending;
        if (type == VsockType.SeqPacket)
        {
            _reader = new SeqPacketMessageReader(maxMessageSize);
            _writer = new SeqPacketMessageWriter(maxMessageSize);
        }
    }

    /// <summary>Stream or seqpacket.</summary>
    public VsockType Type { get; }

    /// <inheritdoc/>
    public bool ReadsIntoManyPackets => _reader is null;

    /// <inheritdoc/>
    public bool WritesFromManyPackets => _writer is null;

    /// <summary>
    /// Prepares <paramref name="socket"/> for the data path and registers it with
    /// <paramref name="poller"/>. On failure the socket is left open for the caller to close.
    /// </summary>
    /// <param name="owner">The backend (told when the socket closes).</param>
    /// <param name="socket">A connected Unix socket of <paramref name="type"/>.</param>
    /// <param name="type">Stream or seqpacket.</param>
    /// <param name="initialData">Stream bytes that arrived after the <c>CONNECT</c> line; the guest gets them first.</param>
    /// <param name="replyPending">Host-initiated: hold guest data until <see cref="CompleteReply"/>.</param>
    /// <param name="maxMessageSize">The largest SEQPACKET message either way.</param>
    /// <param name="poller">The device loop that watches the socket.</param>
    /// <param name="endpoint">The endpoint, or null.</param>
    /// <returns>Ok, or why the socket cannot be used.</returns>
    public static UnixIoResult TryCreate(
        UnixSocketBackend owner, Socket socket, VsockType type, ReadOnlyMemory<byte> initialData, bool replyPending,
        int maxMessageSize, IVsockFdPoller poller, out UnixSocketEndpoint? endpoint)
    {
        endpoint = null;
        UnixIoResult configured = UnixSocketIo.ConfigureForDataPath(socket);
        if (!configured.IsOk)
        {
            return configured;
        }

        var created = new UnixSocketEndpoint(owner, socket, type, initialData, replyPending, maxMessageSize);
        created._registration = poller.Watch(socket.SafeHandle, created, out int error);
        if (created._registration is null)
        {
            return UnixIoResult.FromErrno(error);
        }

        endpoint = created;
        return UnixIoResult.Success(0);
    }

    /// <inheritdoc/>
    public void Start(IVsockEndpointEvents events)
    {
        if (Volatile.Read(ref _closed) == 0)
        {
            _events = events;
        }
    }

    /// <inheritdoc/>
    public EndpointResult Write(VsockPacket packet, int offset, SeqPacketFlags boundary)
    {
        if (_replyPending || _killed)
        {
            return _killed ? EndpointResult.Error : EndpointResult.WouldBlock;
        }

        int count = (int)packet.Len - offset;
        if (count < 0)
        {
            return EndpointResult.Error;
        }

        return _writer is null ? SendStream(packet, offset, count) : SendMessagePieces(packet, offset, count, boundary);
    }

    /// <inheritdoc/>
    public EndpointResult Write(ReadOnlySpan<VsockPacket> packets)
    {
        if (_writer is not null)
        {
            // Not called for SEQPACKET (WritesFromManyPackets is false): the first packet, as the interface's default.
            return Write(packets[0], 0, SeqPacketFlags.None);
        }

        if (_replyPending || _killed)
        {
            return _killed ? EndpointResult.Error : EndpointResult.WouldBlock;
        }

        return SendStream(packets);
    }

    /// <inheritdoc/>
    public EndpointResult Write(ReadOnlySpan<byte> data, SeqPacketFlags boundary)
    {
        if (_replyPending || _killed)
        {
            return _killed ? EndpointResult.Error : EndpointResult.WouldBlock;
        }

        if (_writer is not null)
        {
            UnixIoResult piece = _writer.Write(_socket, data, (boundary & SeqPacketFlags.EndOfMessage) != 0);
            return piece.IsOk ? EndpointResult.Ok(data.Length) : MapWrite(piece);
        }

        if (data.IsEmpty)
        {
            return EndpointResult.Ok(0);
        }

        UnixIoResult sent = UnixSocketIo.Send(_socket, data);
        return sent.IsOk ? EndpointResult.Ok(sent.Bytes) : MapWrite(sent);
    }

    /// <inheritdoc/>
    public EndpointResult Read(VsockPacket packet, int maxBytes)
    {
        if (_killed)
        {
            return EndpointResult.Error;
        }

        if (maxBytes <= 0)
        {
            return EndpointResult.Ok(0);
        }

        if (!_initial.IsEmpty)
        {
            int take = Math.Min(maxBytes, _initial.Length);
            if (packet.CopyDataFrom(_initial.Span[..take]).IsError)
            {
                return EndpointResult.Error;
            }

            _initial = _initial[take..];
            return EndpointResult.Ok(take);
        }

        return _reader is null ? ReceiveStream(packet, maxBytes) : ReceiveMessagePiece(packet, maxBytes);
    }

    /// <inheritdoc/>
    /// <remarks>One gathering <c>recvmsg</c> over every packet's data buffers (up to 32 of them): a burst of host data
    /// reaches several guest RX buffers with one system call. SEQPACKET, and a stream with bytes still held from
    /// its <c>CONNECT</c> line, read into the first packet only.</remarks>
    public EndpointResult Read(ReadOnlySpan<VsockPacket> packets, int maxBytes)
    {
        if (packets.Length == 1 || _reader is not null || !_initial.IsEmpty || _killed || maxBytes <= 0)
        {
            return Read(packets[0], Math.Min(maxBytes, packets[0].DataCapacity));
        }

        // The device's RX packets are parsed from guest memory, a native mapping that never moves: their
        // addresses can be taken without pinning.
        Span<UnixIoSegment> segments = stackalloc UnixIoSegment[MaxGather];
        int used = 0;
        int remaining = maxBytes;
        foreach (VsockPacket packet in packets)
        {
            int take = Math.Min(remaining, packet.DataCapacity);
            if (take <= 0 || used == MaxGather)
            {
                break;
            }

            DataSpanEnumerator spans = packet.GetDataSpans(0, take);
            while (used < MaxGather && spans.MoveNext())
            {
                segments[used++] = Segment(spans.Current);
                remaining -= spans.Current.Length;
            }

            if (spans.Error.IsError)
            {
                return EndpointResult.Error;
            }
        }

        if (_drained)
        {
            return EndpointResult.WouldBlock;
        }

        UnixIoResult received = UnixSocketIo.Receive(_socket, segments[..used]);
        NoteShortRead(received, maxBytes - remaining);
        return MapRead(received, SeqPacketFlags.None);
    }

    /// <inheritdoc/>
    public void RequestReadable()
    {
        if (Volatile.Read(ref _closed) != 0)
        {
            return;
        }

        if (!_initial.IsEmpty || _registration is null || !_registration.RequestReadable())
        {
            // Readable now, or the socket is gone: the next read says which.
            _drained = false;
            _events?.Readable();
        }
    }

    /// <inheritdoc/>
    public void RequestWritable()
    {
        if (Volatile.Read(ref _closed) != 0)
        {
            return;
        }

        if (_replyPending)
        {
            lock (_gate)
            {
                if (_replyPending)
                {
                    _writableWanted = true;
                    return;
                }
            }
        }

        if (_registration is null || !_registration.RequestWritable())
        {
            _events?.Writable();
        }
    }

    /// <inheritdoc/>
    public void ShutdownSend()
    {
        if (Volatile.Read(ref _closed) != 0)
        {
            return;
        }

        // A message the guest never finished will not be finished now.
        _writer?.Reset();
        if (_replyPending)
        {
            lock (_gate)
            {
                if (_replyPending)
                {
                    _shutdownDeferred = true;
                    return;
                }
            }
        }

        UnixSocketIo.ShutdownSend(_socket);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Besides <c>shutdown(SHUT_RD)</c>, drops what the host peer had already queued: the guest will never read
    /// it, and while it fills the peer's send buffer the peer neither polls writable nor reaches the EPIPE check
    /// (a blocked send would stay blocked until the guest closed). After the shutdown nothing new is queued, so
    /// the drop is bounded by what was there.
    /// </remarks>
    public void ShutdownReceive()
    {
        if (Volatile.Read(ref _closed) != 0)
        {
            return;
        }

        UnixSocketIo.ShutdownReceive(_socket);
        _initial = default;
        DiscardUnread();
    }

    private void DiscardUnread()
    {
        Span<byte> scratch = stackalloc byte[DiscardChunk];
        for (int i = 0; i < MaxDiscardReads; i++)
        {
            UnixIoResult received = UnixSocketIo.Receive(_socket, scratch);
            if (!received.IsOk || received.Bytes == 0)
            {
                return;
            }
        }
    }

    /// <inheritdoc/>
    public void Close(bool abort)
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        _events = null;
        _registration?.Dispose();
        _reader?.Dispose();
        _writer?.Dispose();
        lock (_gate)
        {
            if (_replyPending)
            {
                // The OK reply is being sent: close right after it (see CompleteReply).
                _closeDeferred = true;
                return;
            }
        }

        CloseSocket();
    }

    /// <summary>
    /// Host-initiated: the backend has sent the <c>OK</c> reply (or failed to); guest data may now
    /// flow, and a shutdown or close the device asked for meanwhile is carried out. Any thread.
    /// </summary>
    /// <param name="sent">Whether the reply went out whole (if not, the socket is already closed and the
    /// device learns it at its next read or write).</param>
    public void CompleteReply(bool sent)
    {
        bool shutdown;
        bool close;
        bool writable;
        lock (_gate)
        {
            _replyPending = false;
            shutdown = _shutdownDeferred;
            close = _closeDeferred;
            writable = _writableWanted;
            _writableWanted = false;
        }

        if (close)
        {
            CloseSocket();
            return;
        }

        if (shutdown && sent)
        {
            UnixSocketIo.ShutdownSend(_socket);
        }

        IVsockEndpointEvents? events = _events;
        if (!sent)
        {
            _drained = false;
            events?.Readable();
        }

        if (writable || !sent)
        {
            events?.Writable();
        }
    }

    /// <summary>
    /// The backend is going away: shuts the socket both ways and closes it, then prods the device so it
    /// notices (its next read or write fails, so it resets the connection: the guest gets RST, and
    /// calls <see cref="Close"/>). Any thread.
    /// </summary>
    public void Kill()
    {
        _killed = true;
        UnixSocketIo.ShutdownSend(_socket);
        UnixSocketIo.ShutdownReceive(_socket);
        _registration?.Dispose();
        CloseSocket();
        IVsockEndpointEvents? events = _events;
        events?.Readable();
        events?.Writable();
    }

    private void CloseSocket()
    {
        if (Interlocked.Exchange(ref _socketClosed, 1) == 0)
        {
            _socket.Dispose();
            _owner.OnEndpointClosed(this);
        }
    }

    /// <inheritdoc/>
    void IVsockFdHandler.OnFault(Exception exception)
    {
        // The device's readiness callbacks only signal the connection; nothing here throws in practice. If one did,
        // the connection learns of trouble at its next read or write: prod it both ways.
        IVsockEndpointEvents? events = _events;
        events?.Readable();
        events?.Writable();
    }

    /// <inheritdoc/>
    void IVsockFdHandler.OnReady(VsockFdReadiness ready)
    {
        IVsockEndpointEvents? events = _events;
        if (events is null)
        {
            return;
        }

        if ((ready & VsockFdReadiness.Readable) != 0)
        {
            _drained = false;
            _hangUpSeen |= (ready & VsockFdReadiness.HangUp) != 0;
            events.Readable();
        }

        if ((ready & VsockFdReadiness.Writable) != 0)
        {
            events.Writable();
        }
    }

    // ---------------------------------------------------------------- stream
}
