using System.Buffers;
using System.Net.Sockets;

namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// Writes guest SEQPACKET messages to a host SOCK_SEQPACKET socket: the RW payloads of one message
/// arrive in pieces, and the message leaves as one atomic <c>sendmsg</c> when the piece with EOM
/// arrives. Owns the pieces received so far of one message, in a pooled buffer no larger than
/// <see cref="MaxMessageSize"/>, for one connection. It must never block, never send part of a
/// message or merge two, never hold more than <see cref="MaxMessageSize"/> bytes, and never copy the
/// last (or only) piece: it is gathered straight from the caller's span. Not thread-safe: one caller
/// at a time (the device loop).
/// </summary>
/// <remarks>
/// Contract: <see cref="UnixIoStatus.WouldBlock"/> means nothing of this call's data was taken (the
/// host's receive queue is full): keep the bytes and call again with the same piece when the socket
/// is writable. Earlier pieces stay staged meanwhile.
/// </remarks>
internal sealed class SeqPacketMessageWriter : IDisposable
{
    private byte[]? _stage;
    private int _length;

    /// <summary>Creates a writer.</summary>
    /// <param name="maxMessageSize">The largest message accepted (default 256 KiB); a bigger one is <see cref="UnixIoStatus.MessageTooLarge"/>.</param>
    public SeqPacketMessageWriter(int maxMessageSize = SeqPacketMessageReader.DefaultMaxMessageSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessageSize, 1);
        MaxMessageSize = maxMessageSize;
    }

    /// <summary>The largest message accepted.</summary>
    public int MaxMessageSize { get; }

    /// <summary>Bytes of the current, unfinished message staged so far.</summary>
    public int StagedBytes => _length;

    /// <summary>
    /// Takes one piece of the current message; with <paramref name="endOfMessage"/>, sends the whole
    /// message (staged pieces and this one) as one SOCK_SEQPACKET message.
    /// </summary>
    /// <param name="socket">A connected SOCK_SEQPACKET socket.</param>
    /// <param name="data">The piece (may be empty, e.g. an empty message with EOM).</param>
    /// <param name="endOfMessage">True when this piece ends the message (the RW packet had EOM).</param>
    /// <returns>
    /// Ok with <see cref="UnixIoResult.Bytes"/> = <paramref name="data"/> length (taken; for the last piece: the
    /// message was sent and <see cref="UnixIoResult.MessageLength"/> is its length); WouldBlock (nothing taken,
    /// retry the same piece later); MessageTooLarge (above <see cref="MaxMessageSize"/> or the socket's send buffer:
    /// reset the connection); PeerClosed, Reset or another failure.
    /// </returns>
    public unsafe UnixIoResult Write(Socket socket, ReadOnlySpan<byte> data, bool endOfMessage)
    {
        if ((long)_length + data.Length > MaxMessageSize)
        {
            return UnixIoResult.Failure(UnixIoStatus.MessageTooLarge, Interop.Errors.EMSGSIZE);
        }

        if (!endOfMessage)
        {
            Append(data);
            return UnixIoResult.Success(data.Length);
        }

        UnixIoResult sent;
        if (_length == 0)
        {
            sent = UnixSocketIo.SendMessage(socket, data);
        }
        else
        {
            fixed (byte* staged = _stage)
            fixed (byte* last = data)
            {
                Span<UnixIoSegment> segments = stackalloc UnixIoSegment[2];
                segments[0] = new UnixIoSegment((nint)staged, _length);
                segments[1] = new UnixIoSegment((nint)last, data.Length);
                sent = UnixSocketIo.SendMessage(socket, segments);
            }
        }

        if (!sent.IsOk)
        {
            return sent;
        }

        int messageLength = _length + data.Length;
        Reset();
        return new UnixIoResult(UnixIoStatus.Ok, data.Length, messageLength, false, 0);
    }

    /// <summary>Drops the staged pieces (connection reset) and returns the buffer to the pool.</summary>
    public void Reset()
    {
        byte[]? stage = _stage;
        _stage = null;
        _length = 0;
        if (stage is not null)
        {
            ArrayPool<byte>.Shared.Return(stage);
        }
    }

    /// <summary>Same as <see cref="Reset"/>.</summary>
    public void Dispose() => Reset();

    private void Append(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        int needed = _length + data.Length;
        if (_stage is null || _stage.Length < needed)
        {
            byte[] bigger = ArrayPool<byte>.Shared.Rent(Math.Min(Math.Max(needed, Math.Max(4096, (_stage?.Length ?? 0) * 2)), MaxMessageSize));
            if (_stage is not null)
            {
                _stage.AsSpan(0, _length).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(_stage);
            }

            _stage = bigger;
        }

        data.CopyTo(_stage.AsSpan(_length));
        _length = needed;
    }
}
