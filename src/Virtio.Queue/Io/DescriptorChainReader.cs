using System.Runtime.InteropServices;

namespace Virtio.Queue;

/// <summary>
/// Reads the bytes of a chain's device-readable part, in order, across any number of descriptors and
/// guest memory regions.
/// </summary>
/// <remarks>
/// <para><b>Design.</b> The constructor measures the whole chain once (<see cref="DescriptorChain.Measure"/>):
/// a chain with any broken rule yields no bytes at all, only its <see cref="Error"/>, so a device never acts
/// on half of a malformed request. Then the reader walks its own copy of the chain. Zero-length descriptors
/// are skipped. A value type; it does not allocate and does not throw.</para>
/// <para><b>Limits.</b> <see cref="Remaining"/> is what the chain held when measured. A driver that rewrites
/// descriptors while the device reads them can make the data shorter (the reader stops early) but never
/// longer, and never outside guest memory.</para>
/// </remarks>
[StructLayout(LayoutKind.Auto)]
public struct DescriptorChainReader
{
    private ChainCursor _cursor;
    private ulong _remaining;
    private ulong _bytesRead;
    private QueueError _error;

    /// <summary>Creates a reader at the start of the chain's readable part.</summary>
    /// <param name="chain">The chain; it is read from its head wherever its cursor is (the caller's copy does not move).</param>
    public DescriptorChainReader(DescriptorChain chain)
    {
        _error = chain.Measure(out _remaining, out _);
        if (_error != QueueError.None)
        {
            _remaining = 0;
        }

        _cursor = new ChainCursor(chain.Rewind(), writable: false);
        _bytesRead = 0;
    }

    /// <summary>Readable bytes not read yet.</summary>
    public readonly ulong Remaining => _remaining;

    /// <summary>Bytes read so far.</summary>
    public readonly ulong BytesRead => _bytesRead;

    /// <summary>Why the reader stopped (the chain's error, or a memory error), or <see cref="QueueError.None"/>.</summary>
    public readonly QueueError Error => _error;

    /// <summary>Reads up to <c>destination.Length</c> bytes; fewer only at the end of the readable part.</summary>
    /// <param name="destination">Where the bytes go.</param>
    /// <param name="bytesRead">How many bytes were copied.</param>
    /// <returns>The error, or <see cref="QueueError.None"/> (also when fewer bytes were available).</returns>
    public QueueError Read(Span<byte> destination, out int bytesRead)
    {
        bytesRead = 0;
        while (bytesRead < destination.Length)
        {
            QueueError error = PeekSpan(destination.Length - bytesRead, out ReadOnlySpan<byte> span);
            if (error != QueueError.None)
            {
                return error;
            }

            if (span.IsEmpty)
            {
                break;
            }

            span.CopyTo(destination[bytesRead..]);
            Advance(span.Length);
            bytesRead += span.Length;
        }

        return QueueError.None;
    }

    /// <summary>Reads exactly <c>destination.Length</c> bytes, or nothing when fewer remain.</summary>
    /// <param name="destination">Where the bytes go.</param>
    /// <returns><see cref="QueueError.NotEnoughReadableBytes"/> when fewer remain, another error, or <see cref="QueueError.None"/>.</returns>
    public QueueError ReadExactly(Span<byte> destination)
    {
        if (_error != QueueError.None)
        {
            return _error;
        }

        if ((ulong)destination.Length > _remaining)
        {
            return QueueError.NotEnoughReadableBytes;
        }

        QueueError error = Read(destination, out int read);
        return error != QueueError.None ? error : read == destination.Length ? QueueError.None : QueueError.NotEnoughReadableBytes;
    }

    /// <summary>
    /// The next contiguous piece of readable guest memory, without consuming it (zero-copy access, e.g. to
    /// send it to a socket). Empty at the end. Consume with <see cref="Advance"/>.
    /// </summary>
    /// <param name="maxLength">The most bytes wanted.</param>
    /// <param name="span">The piece, at most <paramref name="maxLength"/> and <see cref="Remaining"/> bytes.</param>
    /// <returns>The error, or <see cref="QueueError.None"/>.</returns>
    public QueueError PeekSpan(int maxLength, out ReadOnlySpan<byte> span)
    {
        span = default;
        if (_error != QueueError.None)
        {
            return _error;
        }

        if (_remaining == 0 || maxLength <= 0)
        {
            return QueueError.None;
        }

        QueueError error = _cursor.Next((int)Math.Min((ulong)maxLength, _remaining), out Span<byte> piece);
        if (error != QueueError.None)
        {
            _error = error;
            _remaining = 0;
            return error;
        }

        if (piece.IsEmpty)
        {
            _remaining = 0;
        }

        span = piece;
        return QueueError.None;
    }

    /// <summary>Consumes bytes of the span returned by the last <see cref="PeekSpan"/>.</summary>
    /// <param name="count">At most that span's length.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative or beyond the last span (a caller bug).</exception>
    public void Advance(int count)
    {
        if ((ulong)count > _remaining || !_cursor.Advance(count))
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, "Advance past the span last handed out.");
        }

        _remaining -= (ulong)count;
        _bytesRead += (ulong)count;
    }
}
