namespace Virtio.Vsock.Device.Backends.InProcess;

/// <summary>
/// A fixed-capacity byte ring with optional message ends, for one direction of an in-process connection.
/// Not thread-safe: the owner locks. Never grows.
/// </summary>
internal sealed class ByteRing
{
    private readonly byte[] _buffer;
    private readonly Queue<(long End, SeqPacketFlags Flags)> _boundaries = new();
    private long _head;
    private long _tail;

    /// <summary>Creates a ring.</summary>
    /// <param name="capacity">Bytes it holds at most.</param>
    public ByteRing(int capacity) => _buffer = new byte[capacity];

    /// <summary>Bytes held.</summary>
    public int Count => (int)(_tail - _head);

    /// <summary>Room left.</summary>
    public int Free => _buffer.Length - Count;

    /// <summary>Message ends held.</summary>
    public int BoundaryCount => _boundaries.Count;

    /// <summary>Whether there is anything to read (a byte or an empty message).</summary>
    public bool HasData => Count > 0 || _boundaries.Count > 0;

    /// <summary>Bytes readable before the next message end (all bytes when none).</summary>
    public int ReadableUntilBoundary => _boundaries.TryPeek(out var b) ? (int)(b.End - _head) : Count;

    /// <summary>The two contiguous free areas (second may be empty), limited to <paramref name="max"/> bytes in total.</summary>
    /// <param name="max">The most bytes wanted.</param>
    /// <param name="first">The first area.</param>
    /// <param name="second">The second area.</param>
    public void GetWritable(int max, out Span<byte> first, out Span<byte> second)
    {
        int count = Math.Min(max, Free);
        int start = (int)(_tail % _buffer.Length);
        int firstLength = Math.Min(count, _buffer.Length - start);
        first = _buffer.AsSpan(start, firstLength);
        second = _buffer.AsSpan(0, count - firstLength);
    }

    /// <summary>The two contiguous readable areas, limited to <paramref name="max"/> bytes in total.</summary>
    /// <param name="max">The most bytes wanted.</param>
    /// <param name="first">The first area.</param>
    /// <param name="second">The second area.</param>
    public void GetReadable(int max, out Span<byte> first, out Span<byte> second)
    {
        int count = Math.Min(max, Count);
        int start = (int)(_head % _buffer.Length);
        int firstLength = Math.Min(count, _buffer.Length - start);
        first = _buffer.AsSpan(start, firstLength);
        second = _buffer.AsSpan(0, count - firstLength);
    }

    /// <summary>Commits <paramref name="count"/> written bytes.</summary>
    /// <param name="count">Bytes.</param>
    public void CommitWrite(int count) => _tail += count;

    /// <summary>Records a message end after the last written byte.</summary>
    /// <param name="flags">EOM / EOR.</param>
    public void AddBoundary(SeqPacketFlags flags) => _boundaries.Enqueue((_tail, flags));

    /// <summary>Consumes <paramref name="count"/> bytes; returns the flags of a message end reached exactly, else none.</summary>
    /// <param name="count">Bytes.</param>
    /// <returns>The message-end flags reached.</returns>
    public SeqPacketFlags CommitRead(int count)
    {
        _head += count;
        if (_boundaries.TryPeek(out var boundary) && boundary.End == _head)
        {
            _boundaries.Dequeue();
            return boundary.Flags == SeqPacketFlags.None ? SeqPacketFlags.EndOfMessage : boundary.Flags;
        }

        return SeqPacketFlags.None;
    }

    /// <summary>Drops everything.</summary>
    public void Clear()
    {
        _head = _tail;
        _boundaries.Clear();
    }

    /// <summary>Writes from a span; returns bytes written.</summary>
    /// <param name="source">The bytes.</param>
    /// <returns>How many fitted.</returns>
    public int Write(ReadOnlySpan<byte> source)
    {
        GetWritable(source.Length, out Span<byte> first, out Span<byte> second);
        source[..first.Length].CopyTo(first);
        source.Slice(first.Length, second.Length).CopyTo(second);
        CommitWrite(first.Length + second.Length);
        return first.Length + second.Length;
    }
}
