using System.Runtime.InteropServices;

namespace Virtio.Queue;

/// <summary>
/// Writes bytes into a chain's device-writable part, in order, across any number of descriptors and guest
/// memory regions, counting them: <see cref="BytesWritten"/> is the used length to return with the chain.
/// </summary>
/// <remarks>
/// <para><b>Design.</b> The constructor measures the whole chain once (<see cref="DescriptorChain.Measure"/>):
/// a chain with any broken rule accepts no bytes, only reports its <see cref="Error"/>. The writer skips the
/// readable descriptors and zero-length ones. <see cref="Write"/> is all-or-nothing against
/// <see cref="Remaining"/>; <see cref="GetSpan"/> / <see cref="Advance"/> give zero-copy access (e.g. to
/// receive from a socket straight into guest memory). A value type; it does not allocate and does not
/// throw on guest input.</para>
/// <para><b>Limits.</b> The writable capacity is capped at <see cref="uint.MaxValue"/>, the largest used
/// length. A driver that rewrites descriptors meanwhile can only make the room shorter.</para>
/// </remarks>
[StructLayout(LayoutKind.Auto)]
public struct DescriptorChainWriter
{
    private ChainCursor _cursor;
    private ulong _remaining;
    private uint _bytesWritten;
    private QueueError _error;

    /// <summary>Creates a writer at the start of the chain's writable part.</summary>
    /// <param name="chain">The chain; it is read from its head wherever its cursor is (the caller's copy does not move).</param>
    public DescriptorChainWriter(DescriptorChain chain)
    {
        _error = chain.Measure(out _, out ulong writable);
        _remaining = _error == QueueError.None ? Math.Min(writable, uint.MaxValue) : 0;
        _cursor = new ChainCursor(chain.Rewind(), writable: true);
        _bytesWritten = 0;
    }

    /// <summary>Writable bytes left.</summary>
    public readonly ulong Remaining => _remaining;

    /// <summary>Bytes written so far: the used length for this chain.</summary>
    public readonly uint BytesWritten => _bytesWritten;

    /// <summary>Why the writer stopped (the chain's error, or a memory error), or <see cref="QueueError.None"/>.</summary>
    public readonly QueueError Error => _error;

    /// <summary>Writes all of <paramref name="source"/>, or nothing when it does not fit.</summary>
    /// <param name="source">The bytes.</param>
    /// <returns><see cref="QueueError.NotEnoughWritableSpace"/> when it does not fit, another error, or <see cref="QueueError.None"/>.</returns>
    public QueueError Write(ReadOnlySpan<byte> source)
    {
        if (_error != QueueError.None)
        {
            return _error;
        }

        if ((ulong)source.Length > _remaining)
        {
            return QueueError.NotEnoughWritableSpace;
        }

        while (!source.IsEmpty)
        {
            QueueError error = GetSpan(source.Length, out Span<byte> span);
            if (error != QueueError.None)
            {
                return error;
            }

            if (span.IsEmpty)
            {
                // The driver shortened the chain after it was measured.
                return QueueError.NotEnoughWritableSpace;
            }

            source[..span.Length].CopyTo(span);
            Advance(span.Length);
            source = source[span.Length..];
        }

        return QueueError.None;
    }

    /// <summary>
    /// The next contiguous piece of writable guest memory; empty at the end. Bytes put there count once
    /// committed with <see cref="Advance"/>.
    /// </summary>
    /// <param name="maxLength">The most bytes wanted.</param>
    /// <param name="span">The piece, at most <paramref name="maxLength"/> and <see cref="Remaining"/> bytes.</param>
    /// <returns>The error, or <see cref="QueueError.None"/>.</returns>
    public QueueError GetSpan(int maxLength, out Span<byte> span)
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

        QueueError error = _cursor.Next((int)Math.Min((ulong)maxLength, _remaining), out span);
        if (error != QueueError.None)
        {
            _error = error;
            _remaining = 0;
            return error;
        }

        if (span.IsEmpty)
        {
            _remaining = 0;
        }

        return QueueError.None;
    }

    /// <summary>Commits bytes written into the span returned by the last <see cref="GetSpan"/>.</summary>
    /// <param name="count">At most that span's length.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative or beyond the last span (a caller bug).</exception>
    public void Advance(int count)
    {
        if ((ulong)count > _remaining || !_cursor.Advance(count))
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, "Advance past the span last handed out.");
        }

        _remaining -= (ulong)count;
        _bytesWritten += (uint)count;
    }
}
