using System.Buffers;

namespace Virtio.Vsock.Device.Siblings;

/// <summary>
/// The one-way packet queue from one device (the source) to another (the destination) for their guests'
/// sibling traffic: filled by the source's loop from its TX queue, drained by the destination's loop into
/// its RX queue. Single producer, single consumer, lock-free.
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> a fixed ring of <see cref="SiblingPacket"/> slots (allocated on first use), the payload
/// copies of the packets it holds (pooled arrays), the byte and packet counts that bound it, the
/// "queued on the destination loop" flag that makes <see cref="Notify"/> allocation-free, and the
/// destination's bookkeeping about it (ready-queue membership, how much of the head packet went out).</para>
/// <para><b>Bounds:</b> at most <c>maxPackets</c> packets and <c>maxBytes</c> payload bytes from guest traffic,
/// plus a few reserved slots for RSTs the source device itself sends (so it can always tell the other guest
/// that it reset a connection). A full route refuses the packet; the source device decides what that means.</para>
/// <para><b>Must never:</b> block, take a lock, or call into either device beyond waking the destination loop;
/// be filled from any thread but the source's loop or drained from any thread but the destination's.</para>
/// </remarks>
internal sealed class SiblingRoute : ISignalSource
{
    private readonly int _maxBytes;
    private readonly int _maxPackets;
    private readonly int _capacity;
    private SiblingPacket[]? _ring;
    private long _tail;
    private long _head;
    private long _bytes;
    private int _signalQueued;
    private volatile bool _closed;

    /// <summary>Creates an empty route.</summary>
    /// <param name="source">The sending member.</param>
    /// <param name="destination">The receiving member.</param>
    /// <param name="maxBytes">The most payload bytes queued.</param>
    /// <param name="maxPackets">The most packets queued from guest traffic.</param>
    /// <param name="reservedResets">Extra slots for device-made RSTs.</param>
    public SiblingRoute(SiblingMember source, SiblingMember destination, int maxBytes, int maxPackets, int reservedResets)
    {
        Source = source;
        Destination = destination;
        _maxBytes = maxBytes;
        _maxPackets = maxPackets;
        _capacity = maxPackets + reservedResets;
        SeenSourceEpoch = source.Epoch;
    }

    /// <summary>The sending member.</summary>
    public SiblingMember Source { get; }

    /// <summary>The receiving member.</summary>
    public SiblingMember Destination { get; }

    /// <summary>Packets queued now.</summary>
    public int Count => (int)(Volatile.Read(ref _tail) - Volatile.Read(ref _head));

    /// <summary>Payload bytes queued now.</summary>
    public long QueuedBytes => Volatile.Read(ref _bytes);

    /// <summary>Whether one of the two devices left the map: the route carries nothing more.</summary>
    public bool IsClosed => _closed;

    /// <summary>Marks the route closed and wakes the destination so it drops what is queued (the map, on leave).</summary>
    public void Close()
    {
        _closed = true;
        Notify();
    }

    // ---------------------------------------------------------------- consumer-only state

    /// <summary>Whether the route is in the destination relay's ready queue (destination loop only).</summary>
    public bool InReadyQueue { get; set; }

    /// <summary>Payload bytes of the head packet already written to RX buffers (destination loop only).</summary>
    public int DeliveredOffset { get; set; }

    /// <summary>The source epoch the destination last acted on (destination loop only).</summary>
    public long SeenSourceEpoch { get; set; }

    // ---------------------------------------------------------------- producer (source loop)

    /// <summary>Queues a copy of a packet the source guest sent (header unchanged, payload copied).</summary>
    /// <param name="packet">The parsed TX packet.</param>
    /// <param name="sourceEpoch">The source's epoch.</param>
    /// <param name="destinationEpoch">The destination's epoch as the source saw it.</param>
    /// <returns><see langword="false"/> when the route is full or the payload could not be read.</returns>
    public bool TryEnqueue(VsockPacket packet, long sourceEpoch, long destinationEpoch)
    {
        uint len = packet.Len;
        long count = _tail - Volatile.Read(ref _head);
        if (count >= _maxPackets || Volatile.Read(ref _bytes) + len > _maxBytes)
        {
            return false;
        }

        byte[]? payload = null;
        if (len != 0)
        {
            // Charged to the sending device's budget until the receiving device delivers or drops it.
            if (!Source.Relay.Budget.TryReserve(len))
            {
                return false;
            }

            payload = ArrayPool<byte>.Shared.Rent((int)len);
            if (packet.CopyDataTo(payload.AsSpan(0, (int)len)).IsError)
            {
                ArrayPool<byte>.Shared.Return(payload);
                Source.Relay.Budget.Release(len);
                return false;
            }
        }

        Publish(packet.Header, payload, sourceEpoch, destinationEpoch);
        return true;
    }

    /// <summary>Queues a packet without payload that the source device makes (an RST), using the reserved slots if needed.</summary>
    /// <param name="header">The header (<c>len</c> must be 0).</param>
    /// <param name="sourceEpoch">The source's epoch.</param>
    /// <param name="destinationEpoch">The destination's epoch as the source saw it.</param>
    /// <returns><see langword="false"/> when even the reserved slots are taken.</returns>
    public bool TryEnqueueControl(in VsockHeader header, long sourceEpoch, long destinationEpoch)
    {
        if (_tail - Volatile.Read(ref _head) >= _capacity)
        {
            return false;
        }

        Publish(header with { Len = 0 }, null, sourceEpoch, destinationEpoch);
        return true;
    }

    /// <summary>Wakes the destination loop to look at this route (at most one pending wake-up; never allocates).</summary>
    public void Notify()
    {
        if (Interlocked.Exchange(ref _signalQueued, 1) == 0)
        {
            Destination.Relay.Loop.Signal(this);
        }
    }

    private void Publish(in VsockHeader header, byte[]? payload, long sourceEpoch, long destinationEpoch)
    {
        SiblingPacket[] ring = Volatile.Read(ref _ring) ?? CreateRing();
        ref SiblingPacket slot = ref ring[(int)(_tail % _capacity)];
        slot.Header = header;
        slot.Payload = payload;
        slot.SourceEpoch = sourceEpoch;
        slot.DestinationEpoch = destinationEpoch;
        Interlocked.Add(ref _bytes, header.Len);
        Volatile.Write(ref _tail, _tail + 1);
    }

    private SiblingPacket[] CreateRing()
    {
        var ring = new SiblingPacket[_capacity];
        Volatile.Write(ref _ring, ring);
        return ring;
    }

    // ---------------------------------------------------------------- consumer (destination loop)

    /// <summary>The oldest queued packet; only valid while <see cref="Count"/> is above 0.</summary>
    /// <returns>A reference to its slot.</returns>
    public ref SiblingPacket Head() => ref Volatile.Read(ref _ring)![(int)(_head % _capacity)];

    /// <summary>Removes the oldest packet and returns its payload array to the pool.</summary>
    public void RemoveHead()
    {
        ref SiblingPacket slot = ref Head();
        if (slot.Payload is not null)
        {
            ArrayPool<byte>.Shared.Return(slot.Payload);
            Source.Relay.Budget.Release(slot.Header.Len);
        }

        Interlocked.Add(ref _bytes, -slot.Header.Len);
        slot = default;
        DeliveredOffset = 0;
        Volatile.Write(ref _head, _head + 1);
    }

    /// <summary>Removes every queued packet.</summary>
    /// <returns>How many were removed.</returns>
    public int DiscardAll()
    {
        int removed = 0;
        while (Count > 0)
        {
            RemoveHead();
            removed++;
        }

        return removed;
    }

    /// <inheritdoc/>
    public void OnSignalled()
    {
        Volatile.Write(ref _signalQueued, 0);
        Destination.Relay.OnRouteSignalled(this);
    }

    /// <inheritdoc/>
    public void OnFault(Exception exception) => Destination.Relay.Loop.Fail(exception);
}
