using System.Buffers;

namespace Virtio.Vsock.Testing;

/// <summary>Bytes in pooled segments with optional message ends: a simulated socket buffer. Not thread-safe.</summary>
internal sealed class SegmentQueue
{
    private readonly Queue<(byte[] Array, int Length, SeqPacketFlags End)> _segments = new();
    private int _offset;

    /// <summary>Bytes held.</summary>
    public long Count { get; private set; }

    /// <summary>Whether a byte or a message end is held.</summary>
    public bool HasData => _segments.Count > 0;

    /// <summary>Appends a copy of <paramref name="data"/>, optionally ending a message.</summary>
    /// <param name="data">The bytes.</param>
    /// <param name="end">Message end flags (none for streams).</param>
    public void Append(ReadOnlySpan<byte> data, SeqPacketFlags end)
    {
        byte[] array = ArrayPool<byte>.Shared.Rent(Math.Max(1, data.Length));
        data.CopyTo(array);
        _segments.Enqueue((array, data.Length, end));
        Count += data.Length;
    }

    /// <summary>Reads up to <paramref name="destination"/>.Length bytes; with <paramref name="stopAtMessageEnd"/> never crosses a message end.</summary>
    /// <param name="destination">Where the bytes go.</param>
    /// <param name="stopAtMessageEnd">SEQPACKET semantics.</param>
    /// <param name="end">The message end reached, if any.</param>
    /// <returns>Bytes read.</returns>
    public int Read(Span<byte> destination, bool stopAtMessageEnd, out SeqPacketFlags end)
    {
        end = SeqPacketFlags.None;
        int total = 0;
        while (_segments.Count > 0 && (total < destination.Length || (_segments.Peek().Length == _offset)))
        {
            var (array, length, segmentEnd) = _segments.Peek();
            int take = Math.Min(length - _offset, destination.Length - total);
            array.AsSpan(_offset, take).CopyTo(destination[total..]);
            total += take;
            _offset += take;
            if (_offset == length)
            {
                _segments.Dequeue();
                ArrayPool<byte>.Shared.Return(array);
                _offset = 0;
                if (stopAtMessageEnd && segmentEnd != SeqPacketFlags.None)
                {
                    end = segmentEnd;
                    break;
                }
            }
            else
            {
                break;
            }
        }

        Count -= total;
        return total;
    }

    /// <summary>Takes up to the length of <paramref name="destination"/> (a TX payload), stopping at a message end.</summary>
    /// <param name="destination">Where the bytes go.</param>
    /// <param name="end">The message end reached, if any.</param>
    /// <returns>Bytes taken.</returns>
    public int TakeForPacket(Span<byte> destination, out SeqPacketFlags end) => Read(destination, stopAtMessageEnd: true, out end);

    /// <summary>Drops everything.</summary>
    public void Clear()
    {
        while (_segments.TryDequeue(out var segment))
        {
            ArrayPool<byte>.Shared.Return(segment.Array);
        }

        _offset = 0;
        Count = 0;
    }
}
