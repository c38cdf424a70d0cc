namespace Virtio.Vsock;

/// <summary>
/// The payload: copies to and from spans and hands out the payload's segments as host spans
/// (<see cref="GetDataSpans"/>). It must never touch a socket, a stream or any other I/O (sockets belong to
/// the device), never reach beyond the parsed payload buffer, and never allocate.
/// </summary>
public sealed partial class VsockPacket
{
    /// <summary>Copies payload bytes <c>[offset, offset + destination.Length)</c> into <paramref name="destination"/>.</summary>
    /// <param name="destination">Where the bytes go; its length is the count.</param>
    /// <param name="offset">The first payload byte to copy.</param>
    /// <returns>The error (<see cref="VsockPacketErrorKind.DataOutOfRange"/> past the buffer), or none.</returns>
    public VsockPacketError CopyDataTo(Span<byte> destination, int offset = 0)
    {
        if (!InData(offset, destination.Length))
        {
            return VsockPacketError.Of(VsockPacketErrorKind.DataOutOfRange);
        }

        DataSpanEnumerator spans = GetDataSpans(offset, destination.Length);
        int done = 0;
        while (spans.MoveNext())
        {
            spans.Current.CopyTo(destination[done..]);
            done += spans.Current.Length;
        }

        return spans.Error;
    }

    /// <summary>Copies <paramref name="source"/> into the payload buffer at <paramref name="offset"/>.</summary>
    /// <param name="source">The bytes.</param>
    /// <param name="offset">The first payload byte to write.</param>
    /// <returns>The error (<see cref="VsockPacketErrorKind.DataOutOfRange"/> past the buffer), or none.</returns>
    public VsockPacketError CopyDataFrom(ReadOnlySpan<byte> source, int offset = 0)
    {
        if (!InData(offset, source.Length))
        {
            return VsockPacketError.Of(VsockPacketErrorKind.DataOutOfRange);
        }

        DataSpanEnumerator spans = GetDataSpans(offset, source.Length);
        int done = 0;
        while (spans.MoveNext())
        {
            source.Slice(done, spans.Current.Length).CopyTo(spans.Current);
            done += spans.Current.Length;
        }

        return spans.Error;
    }

    /// <summary>
    /// The payload buffer <c>[offset, offset + count)</c> as host spans, straight over guest memory. The spans
    /// must not be kept past the packet's use; a failure shows in <see cref="DataSpanEnumerator.Error"/>.
    /// </summary>
    /// <param name="offset">The first payload byte.</param>
    /// <param name="count">The number of bytes; clamped to the buffer.</param>
    /// <returns>An enumerator of spans.</returns>
    public DataSpanEnumerator GetDataSpans(int offset, int count)
    {
        if (offset < 0 || offset > _dataCapacity)
        {
            offset = (int)_dataCapacity;
        }

        count = Math.Clamp(count, 0, (int)_dataCapacity - offset);
        return _memory is null
            ? new DataSpanEnumerator(_hostData.Span.Slice(offset, count))
            : new DataSpanEnumerator(_memory, _segments.AsSpan(_headerSegments, _dataSegments), (uint)offset, (uint)count);
    }

    private bool InData(int offset, int count) => offset >= 0 && count >= 0 && (ulong)offset + (ulong)count <= _dataCapacity;
}
