using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// The data path of <see cref="UnixSocketEndpoint"/>: non-blocking <c>sendmsg</c> / <c>recvmsg</c> straight between
/// the socket and guest memory (gathering several guest buffers into one call), SEQPACKET message pieces, and the
/// hang-up check that tells end of stream from a closed peer.
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> nothing of its own (the socket and the message reader/writer belong to the class). <b>Must
/// never:</b> block, allocate or throw: every outcome is an <see cref="EndpointResult"/> or a <see cref="UnixIoResult"/>.
/// Runs on the device loop only.</para>
/// </remarks>
internal sealed partial class UnixSocketEndpoint
{
    private EndpointResult SendStream(VsockPacket packet, int offset, int count)
    {
        if (count == 0)
        {
            return EndpointResult.Ok(0);
        }

        UnixIoResult sent = Transfer(packet, offset, count, send: true);
        return sent.IsOk ? EndpointResult.Ok(sent.Bytes) : MapWrite(sent);
    }

    /// <summary>
    /// A run of TX packets with as few <c>sendmsg</c> calls as the gather limit allows (one for a run of whole packets
    /// within <see cref="MaxRunGather"/> buffers): stops at the first short write, since the socket is then full.
    /// </summary>
    private EndpointResult SendStream(ReadOnlySpan<VsockPacket> packets)
    {
        // The device's TX packets are parsed from guest memory, a native mapping that never moves: their addresses
        // can be taken without pinning.
        Span<UnixIoSegment> segments = stackalloc UnixIoSegment[MaxRunGather];
        int total = 0;
        int index = 0;
        int offset = 0;
        while (index < packets.Length)
        {
            int used = 0;
            int gathered = 0;
            int endIndex = index;
            int endOffset = offset;
            while (endIndex < packets.Length)
            {
                VsockPacket packet = packets[endIndex];
                int count = (int)packet.Len - endOffset;
                if (count < 0)
                {
                    return total > 0 ? EndpointResult.Ok(total) : EndpointResult.Error;
                }

                int usedBefore = used;
                int gatheredBefore = gathered;
                bool whole = true;
                DataSpanEnumerator spans = packet.GetDataSpans(endOffset, count);
                while (spans.MoveNext())
                {
                    if (used == MaxRunGather)
                    {
                        whole = false;
                        break;
                    }

                    segments[used++] = Segment(spans.Current);
                    gathered += spans.Current.Length;
                }

                if (spans.Error.IsError)
                {
                    return total > 0 ? EndpointResult.Ok(total) : EndpointResult.Error;
                }

                if (!whole)
                {
                    if (usedBefore > 0)
                    {
                        // This packet goes whole into the next call.
                        used = usedBefore;
                        gathered = gatheredBefore;
                    }
                    else
                    {
                        // One packet with more buffers than one call takes: send a part, then the rest.
                        endOffset += gathered;
                    }

                    break;
                }

                endIndex++;
                endOffset = 0;
            }

            if (gathered > 0)
            {
                UnixIoResult sent = UnixSocketIo.Send(_socket, segments[..used]);
                if (!sent.IsOk)
                {
                    // After bytes went out, report them: the next write meets the error (or the wait) again.
                    return total > 0 ? EndpointResult.Ok(total) : MapWrite(sent);
                }

                total += sent.Bytes;
                if (sent.Bytes < gathered)
                {
                    return EndpointResult.Ok(total);
                }
            }

            index = endIndex;
            offset = endOffset;
        }

        return EndpointResult.Ok(total);
    }

    private void NoteShortRead(UnixIoResult received, int asked)
    {
        if (received.IsOk && received.Bytes < asked && !_hangUpSeen)
        {
            _drained = true;
        }
    }

    private EndpointResult ReceiveStream(VsockPacket packet, int maxBytes)
    {
        if (_drained)
        {
            return EndpointResult.WouldBlock;
        }

        UnixIoResult received = Transfer(packet, 0, maxBytes, send: false);
        NoteShortRead(received, maxBytes);
        return MapRead(received, SeqPacketFlags.None);
    }

    /// <summary>What a receive means to the device: the bytes (with <paramref name="flags"/> when they end a message),
    /// wait, end of stream (or closed, when the peer hung up entirely), closed, or an error.</summary>
    private EndpointResult MapRead(UnixIoResult received, SeqPacketFlags flags) => received.Status switch
    {
        UnixIoStatus.Ok => EndpointResult.Ok(received.Bytes, flags),
        UnixIoStatus.WouldBlock => EndpointResult.WouldBlock,
        UnixIoStatus.EndOfStream => PeerHungUp() ? EndpointResult.Closed : EndpointResult.EndOfStream,
        UnixIoStatus.Reset or UnixIoStatus.PeerClosed => EndpointResult.Closed,
        _ => EndpointResult.Error,
    };

    /// <summary>
    /// One <c>sendmsg</c> / <c>recvmsg</c> between the socket and the packet's payload buffer
    /// <c>[offset, offset + count)</c>, gathering up to <see cref="MaxGather"/> guest buffers.
    /// </summary>
    private unsafe UnixIoResult Transfer(VsockPacket packet, int offset, int count, bool send)
    {
        DataSpanEnumerator spans = packet.GetDataSpans(offset, count);
        if (!spans.MoveNext())
        {
            return spans.Error.IsError ? UnixIoResult.Failure(UnixIoStatus.Error, 0) : UnixIoResult.Success(0);
        }

        Span<byte> first = spans.Current;
        if (!spans.MoveNext())
        {
            if (spans.Error.IsError)
            {
                return UnixIoResult.Failure(UnixIoStatus.Error, 0);
            }

            // One buffer (the usual case; also the only case for packets over host arrays, which this pins).
            return send ? UnixSocketIo.Send(_socket, first) : UnixSocketIo.Receive(_socket, first);
        }

        // Several buffers: only guest memory produces these, and guest memory is a native mapping that
        // never moves, so its addresses can be taken without pinning.
        Span<UnixIoSegment> segments = stackalloc UnixIoSegment[MaxGather];
        segments[0] = Segment(first);
        int used = 1;
        do
        {
            segments[used++] = Segment(spans.Current);
        }
        while (used < MaxGather && spans.MoveNext());

        if (spans.Error.IsError)
        {
            return UnixIoResult.Failure(UnixIoStatus.Error, 0);
        }

        return send ? UnixSocketIo.Send(_socket, segments[..used]) : UnixSocketIo.Receive(_socket, segments[..used]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe UnixIoSegment Segment(Span<byte> span) =>
        new((nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(span)), span.Length);

    // ---------------------------------------------------------------- seqpacket

    private EndpointResult SendMessagePieces(VsockPacket packet, int offset, int count, SeqPacketFlags boundary)
    {
        SeqPacketMessageWriter writer = _writer!;
        bool endOfMessage = (boundary & SeqPacketFlags.EndOfMessage) != 0;
        DataSpanEnumerator spans = packet.GetDataSpans(offset, count);
        bool more = spans.MoveNext();
        if (spans.Error.IsError)
        {
            return EndpointResult.Error;
        }

        if (!more)
        {
            // An empty piece: only an empty end of message sends anything.
            if (!endOfMessage)
            {
                return EndpointResult.Ok(0);
            }

            UnixIoResult empty = writer.Write(_socket, default, endOfMessage: true);
            return empty.IsOk ? EndpointResult.Ok(0) : MapWrite(empty);
        }

        int taken = 0;
        while (more)
        {
            Span<byte> piece = spans.Current;
            more = spans.MoveNext();
            if (spans.Error.IsError)
            {
                return EndpointResult.Error;
            }

            UnixIoResult written = writer.Write(_socket, piece, endOfMessage && !more);
            if (!written.IsOk)
            {
                // Earlier pieces are staged in the writer: report them taken, the connection keeps the rest.
                return taken > 0 && written.Status == UnixIoStatus.WouldBlock ? EndpointResult.Ok(taken) : MapWrite(written);
            }

            taken += piece.Length;
        }

        return EndpointResult.Ok(taken);
    }

    private EndpointResult ReceiveMessagePiece(VsockPacket packet, int maxBytes)
    {
        // The first buffer of the RX packet (the whole data buffer in every Linux layout); a message
        // larger than it is staged by the reader and handed out over several packets.
        DataSpanEnumerator spans = packet.GetDataSpans(0, maxBytes);
        Span<byte> destination = spans.MoveNext() ? spans.Current : default;
        if (spans.Error.IsError || destination.IsEmpty)
        {
            return EndpointResult.Error;
        }

        UnixIoResult received = _reader!.Read(_socket, destination, out bool endOfMessage);
        return MapRead(received, endOfMessage ? SeqPacketFlags.EndOfMessage : SeqPacketFlags.None);
    }

    // ---------------------------------------------------------------- helpers

    private static EndpointResult MapWrite(UnixIoResult result) => result.Status switch
    {
        UnixIoStatus.WouldBlock => EndpointResult.WouldBlock,
        UnixIoStatus.PeerClosed or UnixIoStatus.Reset => EndpointResult.Closed,
        _ => EndpointResult.Error,
    };

    /// <summary>After end of stream: whether the socket is shut both ways (POLLHUP), i.e. the peer closed rather than half-closed.</summary>
    private bool PeerHungUp()
    {
        SafeHandle handle = _socket.SafeHandle;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return (PollNow((int)handle.DangerousGetHandle()) & Interop.Sys.PollHup) != 0;
        }
        catch (ObjectDisposedException)
        {
            return true;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>The socket's poll flags right now (a zero-timeout <c>poll</c>), or 0.</summary>
    private static unsafe short PollNow(int fd)
    {
        Interop.Sys.PollFd entry = new() { Fd = fd, Events = Interop.Sys.PollIn };
        int rc;
        do
        {
            rc = Interop.Sys.Poll(&entry, 1, 0);
        }
        while (rc < 0 && Marshal.GetLastPInvokeError() == Interop.Errors.EINTR);

        return rc > 0 ? entry.ReturnedEvents : (short)0;
    }
}
