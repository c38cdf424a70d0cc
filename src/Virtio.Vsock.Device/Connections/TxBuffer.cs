using System.Buffers;

namespace Virtio.Vsock.Device;

/// <summary>
/// The guest-to-host bytes of one connection that its host endpoint did not take yet: a ring of at most
/// the <c>buf_alloc</c> we advertised, plus (for SEQPACKET) where messages end.
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> one array rented from <see cref="ArrayPool{T}.Shared"/> while it holds data, sized to
/// what it holds (it starts small and doubles, up to the capacity), and the message boundary ring
/// (allocated on the first message end). Every rented byte is charged to the device's
/// <see cref="BufferBudget"/>. <b>Must never:</b> grow past its capacity (the caller resets a guest that
/// sends beyond its credit instead) or past the device's budget (the caller resets the connection),
/// allocate in steady state (the array is rented on first use and returned when the ring empties), or
/// reorder bytes or message ends.</para>
/// <para>Positions are absolute byte counters (<c>long</c>), so a boundary is "the message ends after byte N";
/// a byte at position P lives at index P modulo the array's length.</para>
/// </remarks>
internal sealed class TxBuffer
{
    private const int MinArray = 16 * 1024;

    private readonly int _capacity;
    private readonly int _maxBoundaries;
    private readonly BufferBudget _budget;
    private long[]? _boundaryPositions;
    private SeqPacketFlags[]? _boundaryFlags;
    private byte[]? _buffer;
    private long _head;
    private long _tail;
    private int _boundaryFirst;
    private int _boundaryCount;

    /// <summary>Creates an empty buffer.</summary>
    /// <param name="capacity">The most bytes it holds.</param>
    /// <param name="maxBoundaries">The most message ends it holds (0 for streams).</param>
    /// <param name="budget">The device's budget, charged for every rented byte.</param>
    public TxBuffer(int capacity, int maxBoundaries, BufferBudget budget)
    {
        _capacity = capacity;
        _maxBoundaries = maxBoundaries;
        _budget = budget;
    }

    /// <summary>The bytes held.</summary>
    public int Count => (int)(_tail - _head);

    /// <summary>Whether nothing (no byte, no message end) is held.</summary>
    public bool IsEmpty => _tail == _head && _boundaryCount == 0;

    /// <summary>Room left, in bytes.</summary>
    public int Free => _capacity - Count;

    /// <summary>Appends payload bytes of a TX packet.</summary>
    /// <param name="packet">The packet.</param>
    /// <param name="offset">The first payload byte.</param>
    /// <param name="count">How many bytes.</param>
    /// <returns>What happened; nothing was appended unless <see cref="TxAppendResult.Appended"/>.</returns>
    public TxAppendResult Append(VsockPacket packet, int offset, int count)
    {
        if (count > Free)
        {
            return TxAppendResult.OverCapacity;
        }

        if (count == 0)
        {
            return TxAppendResult.Appended;
        }

        if (!EnsureRoom(Count + count))
        {
            return TxAppendResult.OverBudget;
        }

        byte[] buffer = _buffer!;
        int start = (int)(_tail % buffer.Length);
        int first = Math.Min(count, buffer.Length - start);
        if (packet.CopyDataTo(buffer.AsSpan(start, first), offset).IsError
            || (first < count && packet.CopyDataTo(buffer.AsSpan(0, count - first), offset + first).IsError))
        {
            ReturnIfEmpty();
            return TxAppendResult.GuestMemoryFault;
        }

        _tail += count;
        return TxAppendResult.Appended;
    }

    /// <summary>Records that a message ends after the last byte appended.</summary>
    /// <param name="flags">EOM, and EOR if the message ends a record.</param>
    /// <returns><see langword="false"/> when the boundary ring is full.</returns>
    public bool AddBoundary(SeqPacketFlags flags)
    {
        if (_boundaryCount == _maxBoundaries)
        {
            return false;
        }

        _boundaryPositions ??= new long[_maxBoundaries];
        _boundaryFlags ??= new SeqPacketFlags[_maxBoundaries];
        int index = (_boundaryFirst + _boundaryCount) % _maxBoundaries;
        _boundaryPositions[index] = _tail;
        _boundaryFlags[index] = flags;
        _boundaryCount++;
        return true;
    }

    /// <summary>Writes as much as the endpoint takes, in order, with message ends.</summary>
    /// <param name="endpoint">The host endpoint.</param>
    /// <param name="written">The bytes the endpoint took.</param>
    /// <returns><see cref="EndpointStatus.Ok"/> when empty now; <see cref="EndpointStatus.WouldBlock"/> when the
    /// endpoint is full; or the endpoint's failure.</returns>
    public EndpointStatus Flush(IVsockEndpoint endpoint, out int written)
    {
        written = 0;
        while (!IsEmpty)
        {
            long end = _boundaryCount > 0 ? _boundaryPositions![_boundaryFirst] : _tail;
            SeqPacketFlags flags = _boundaryCount > 0 ? _boundaryFlags![_boundaryFirst] : SeqPacketFlags.None;
            int start = _buffer is null ? 0 : (int)(_head % _buffer.Length);
            int length = _buffer is null ? 0 : (int)Math.Min(end - _head, _buffer.Length - start);
            bool reachesEnd = _head + length == end;
            ReadOnlySpan<byte> span = _buffer is null ? default : _buffer.AsSpan(start, length);
            EndpointResult result = endpoint.Write(span, reachesEnd ? flags : SeqPacketFlags.None);
            if (result.Status != EndpointStatus.Ok)
            {
                return result.Status;
            }

            int taken = Math.Min(result.Bytes, length);
            _head += taken;
            written += taken;
            if (taken == length && reachesEnd && _boundaryCount > 0)
            {
                _boundaryFirst = (_boundaryFirst + 1) % _maxBoundaries;
                _boundaryCount--;
            }

            if (taken < length)
            {
                ReturnIfEmpty();
                return EndpointStatus.WouldBlock;
            }
        }

        ReturnIfEmpty();
        return EndpointStatus.Ok;
    }

    /// <summary>Drops everything and returns the array.</summary>
    public void Clear()
    {
        _head = _tail;
        _boundaryCount = 0;
        ReturnIfEmpty();
    }

    /// <summary>Drops everything and every array (the connection is gone).</summary>
    public void Release()
    {
        Clear();
        _boundaryPositions = null;
        _boundaryFlags = null;
    }

    /// <summary>Makes the array hold at least <paramref name="needed"/> bytes, keeping what it holds.</summary>
    private bool EnsureRoom(int needed)
    {
        int current = _buffer?.Length ?? 0;
        if (needed <= current)
        {
            return true;
        }

        int size = (int)Math.Min(Math.Max(MinArray, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)needed)), (uint)Array.MaxLength);
        if (!_budget.TryReserve(size - current))
        {
            return false;
        }

        byte[] grown = ArrayPool<byte>.Shared.Rent(size);
        if (grown.Length != size)
        {
            // The pool may hand out a larger array: charge what is held.
            if (!_budget.TryReserve(grown.Length - size))
            {
                ArrayPool<byte>.Shared.Return(grown);
                _budget.Release(size - current);
                return false;
            }
        }

        if (_buffer is not null)
        {
            for (long position = _head; position < _tail;)
            {
                int from = (int)(position % _buffer.Length);
                int to = (int)(position % grown.Length);
                int piece = (int)Math.Min(_tail - position, Math.Min(_buffer.Length - from, grown.Length - to));
                _buffer.AsSpan(from, piece).CopyTo(grown.AsSpan(to));
                position += piece;
            }

            ArrayPool<byte>.Shared.Return(_buffer);
        }

        _buffer = grown;
        return true;
    }

    private void ReturnIfEmpty()
    {
        if (_tail == _head && _buffer is not null)
        {
            _budget.Release(_buffer.Length);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
            _head = _tail = 0;
            for (int i = 0; i < _boundaryCount; i++)
            {
                _boundaryPositions![(_boundaryFirst + i) % _maxBoundaries] = 0;
            }
        }
    }
}

/// <summary>What <see cref="TxBuffer.Append"/> did.</summary>
internal enum TxAppendResult
{
    /// <summary>The bytes are held.</summary>
    Appended,

    /// <summary>More than the advertised <c>buf_alloc</c> allows: the guest ignored our credit.</summary>
    OverCapacity,

    /// <summary>The device's buffer budget is spent.</summary>
    OverBudget,

    /// <summary>The payload could not be read from guest memory.</summary>
    GuestMemoryFault,
}
