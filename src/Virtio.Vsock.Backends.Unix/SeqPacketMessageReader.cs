using System.Buffers;
using System.Net.Sockets;

namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// Reads SOCK_SEQPACKET messages from a host socket in pieces of any size while keeping their
/// boundaries: the engine asks for "up to N bytes" (an RX buffer, within the guest's credit) and
/// learns when the bytes end a message, so it sets EOM (and EOR) on that RW packet. Owns at most one
/// staged message, in a pooled buffer no larger than <see cref="MaxMessageSize"/>, for one
/// connection. It must never block (non-blocking calls only), never lose or merge messages, never
/// hold more than <see cref="MaxMessageSize"/> bytes, and never allocate in steady state (a message
/// that fits the destination goes straight there, with no staging copy; staging buffers come from
/// <see cref="ArrayPool{T}.Shared"/>). Not thread-safe: one caller at a time (the device loop).
/// </summary>
internal sealed class SeqPacketMessageReader : IDisposable
{
    /// <summary>The default largest message accepted (256 KiB, above Linux's default Unix socket send buffer).</summary>
    public const int DefaultMaxMessageSize = 256 * 1024;

    private byte[]? _stage;
    private int _length;
    private int _offset;

    /// <summary>Creates a reader.</summary>
    /// <param name="maxMessageSize">The largest message accepted; larger ones are <see cref="UnixIoStatus.MessageTooLarge"/>.</param>
    public SeqPacketMessageReader(int maxMessageSize = DefaultMaxMessageSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessageSize, 1);
        MaxMessageSize = maxMessageSize;
    }

    /// <summary>The largest message accepted.</summary>
    public int MaxMessageSize { get; }

    /// <summary>Bytes of a partly delivered message still staged (0 when none).</summary>
    public int StagedBytes => _stage is null ? 0 : _length - _offset;

    /// <summary>
    /// Reads the next piece of the current message into <paramref name="destination"/>, without
    /// blocking. A message that fits is received straight into <paramref name="destination"/>; a
    /// larger one is received whole into a staging buffer and handed out over several calls.
    /// </summary>
    /// <param name="socket">A connected SOCK_SEQPACKET socket (prepared with <see cref="UnixSocketIo.ConfigureForDataPath"/> so empty messages are seen).</param>
    /// <param name="destination">Where the bytes go.</param>
    /// <param name="endOfMessage">True when the bytes returned end a message (an empty message gives Ok(0) with this set).</param>
    /// <returns>
    /// Ok with <see cref="UnixIoResult.Bytes"/> and <see cref="UnixIoResult.MessageLength"/>; WouldBlock; EndOfStream; Reset;
    /// MessageTooLarge (the message exceeds <see cref="MaxMessageSize"/>; it stays in the socket, reset the connection);
    /// or another failure. Ok(0) without <paramref name="endOfMessage"/> when <paramref name="destination"/> is empty.
    /// </returns>
    public UnixIoResult Read(Socket socket, Span<byte> destination, out bool endOfMessage)
    {
        endOfMessage = false;
        if (_stage is not null)
        {
            return TakeStaged(destination, out endOfMessage);
        }

        UnixIoResult peek = UnixSocketIo.PeekMessage(socket);
        if (!peek.IsOk)
        {
            return peek;
        }

        int length = peek.MessageLength;
        if (length > MaxMessageSize)
        {
            return new UnixIoResult(UnixIoStatus.MessageTooLarge, 0, length, false, Interop.Errors.EMSGSIZE);
        }

        if (length <= destination.Length)
        {
            UnixIoResult direct = UnixSocketIo.ReceiveMessage(socket, destination);
            if (direct.IsOk && direct.Truncated)
            {
                // Only one reader per socket, so the peeked message cannot have changed; be safe anyway.
                return new UnixIoResult(UnixIoStatus.MessageTooLarge, 0, direct.MessageLength, true, Interop.Errors.EMSGSIZE);
            }

            endOfMessage = direct.IsOk;
            return direct;
        }

        if (destination.IsEmpty)
        {
            return UnixIoResult.Success(0);
        }

        byte[] stage = ArrayPool<byte>.Shared.Rent(length);
        UnixIoResult staged = UnixSocketIo.ReceiveMessage(socket, stage.AsSpan(0, length));
        if (!staged.IsOk || staged.Truncated)
        {
            ArrayPool<byte>.Shared.Return(stage);
            return staged.IsOk
                ? new UnixIoResult(UnixIoStatus.MessageTooLarge, 0, staged.MessageLength, true, Interop.Errors.EMSGSIZE)
                : staged;
        }

        _stage = stage;
        _length = staged.Bytes;
        _offset = 0;
        return TakeStaged(destination, out endOfMessage);
    }

    /// <summary>Drops a staged message (connection reset) and returns its buffer to the pool.</summary>
    public void Reset()
    {
        byte[]? stage = _stage;
        _stage = null;
        _length = 0;
        _offset = 0;
        if (stage is not null)
        {
            ArrayPool<byte>.Shared.Return(stage);
        }
    }

    /// <summary>Same as <see cref="Reset"/>.</summary>
    public void Dispose() => Reset();

    private UnixIoResult TakeStaged(Span<byte> destination, out bool endOfMessage)
    {
        int count = Math.Min(_length - _offset, destination.Length);
        _stage.AsSpan(_offset, count).CopyTo(destination);
        _offset += count;
        int length = _length;
        endOfMessage = _offset == _length;
        if (endOfMessage)
        {
            Reset();
        }

        return new UnixIoResult(UnixIoStatus.Ok, count, length, false, 0);
    }
}
