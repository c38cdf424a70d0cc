using System.Buffers;

namespace Virtio.Vsock.Device;

/// <summary>
/// The guest-to-host bytes of one connection that its host endpoint did not take yet: a ring of at most
/// the <c>buf_alloc</c> we advertised, plus (for SEQPACKET) where messages end.
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> one array rented from <see cref="ArrayPool{T}.Shared"/> while it holds data, and the
/// message boundary ring. <b>Must never:</b> grow past its capacity (the caller resets a guest that sends
/// beyond its credit instead), allocate in steady state (the array is rented on first use and returned
/// when the ring empties), or reorder bytes or message ends.</para>
/// <para>Positions are absolute byte counters (<c>long</c>), so a boundary is "the message ends after byte N".</para>
/// </remarks>
internal sealed class TxBuffer
{
    private readonly int _capacity;
    private readonly long[] _boundaryPositions;
    private readonly SeqPacketFlags[] _boundaryFlags;
    private byte[]? _buffer;
    private long _head;
    private long _tail;
    private int _boundaryFirst;
    private int _boundaryCount;

    /// <summary>Creates an empty buffer.</summary>
    /// <param name="capacity">The most bytes it holds.</param>
    /// <param name="maxBoundaries">The most message ends it holds (0 for streams).</param>
    public TxBuffer(int capacity, int maxBoundaries)
    {
        _capacity = capacity;
        _boundaryPositions = maxBoundaries == 0 ? [] : new long[maxBoundaries];
        _boundaryFlags = maxBoundaries == 0 ? [] : new SeqPacketFlags[maxBoundaries];
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
    /// <param name="count">How many bytes; at most <see cref="Free"/>.</param>
    /// <returns>Whether the copy succeeded (guest memory may have gone bad).</returns>
    public bool Append(VsockPacket packet, int offset, int count)
    {
        if (count > Free)
        {
            return false;
        }

        if (count == 0)
        {
            return true;
        }

        byte[] buffer = _buffer ??= ArrayPool<byte>.Shared.Rent(_capacity);
        int start = (int)(_tail % _capacity);
        int first = Math.Min(count, _capacity - start);
        if (packet.CopyDataTo(buffer.AsSpan(start, first), offset).IsError)
        {
            return false;
        }

        if (first < count && packet.CopyDataTo(buffer.AsSpan(0, count - first), offset + first).IsError)
        {
            return false;
        }

        _tail += count;
        return true;
    }

    /// <summary>Records that a message ends after the last byte appended.</summary>
    /// <param name="flags">EOM, and EOR if the message ends a record.</param>
    /// <returns><see langword="false"/> when the boundary ring is full.</returns>
    public bool AddBoundary(SeqPacketFlags flags)
    {
        if (_boundaryCount == _boundaryPositions.Length)
        {
            return false;
        }

        int index = (_boundaryFirst + _boundaryCount) % _boundaryPositions.Length;
        _boundaryPositions[index] = _tail;
        _boundaryFlags[index] = flags;
        _boundaryCount++;
        return true;
    }

    /// <summary>Whether another message end fits.</summary>
    public bool CanAddBoundary => _boundaryCount < _boundaryPositions.Length;

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
            long end = _boundaryCount > 0 ? _boundaryPositions[_boundaryFirst] : _tail;
            SeqPacketFlags flags = _boundaryCount > 0 ? _boundaryFlags[_boundaryFirst] : SeqPacketFlags.None;
            int start = _buffer is null ? 0 : (int)(_head % _capacity);
            int length = (int)Math.Min(end - _head, _capacity - start);
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
                _boundaryFirst = (_boundaryFirst + 1) % _boundaryPositions.Length;
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

    private void ReturnIfEmpty()
    {
        if (_tail == _head && _buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
            _head = _tail = 0;
            for (int i = 0; i < _boundaryCount; i++)
            {
                _boundaryPositions[(_boundaryFirst + i) % _boundaryPositions.Length] = 0;
            }
        }
    }
}
