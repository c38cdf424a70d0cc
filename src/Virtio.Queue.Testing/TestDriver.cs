using System.Buffers.Binary;
using Virtio.Memory;

namespace Virtio.Queue.Testing;

/// <summary>
/// The guest-driver side of one split virtqueue, for tests, simulators and benchmarks: it builds
/// descriptor chains in guest memory, publishes them in the available ring and takes used elements back,
/// the way the Linux <c>virtio_ring</c> driver does.
/// </summary>
/// <remarks>
/// <para><b>Well-behaved path.</b> <see cref="AddChain"/> / <see cref="AddIndirectChain"/> take descriptor
/// slots from a FIFO free list, write the chain and its available-ring entry; <see cref="Publish"/> makes
/// every chain added since the last publish visible with one release store of <c>avail.idx</c>;
/// <see cref="TryTakeUsed"/> reads the used ring and frees the chain's slots (and throws if the device
/// returns a head that is not outstanding: that is a device bug a test wants to see).
/// <see cref="KickNeeded"/>, <see cref="EnableInterrupts"/> and <see cref="DisableInterrupts"/> follow
/// Linux's notification logic, EVENT_IDX included.</para>
/// <para><b>Hostile path.</b> <see cref="WriteDescriptor(ushort, GuestAddress, uint, DescriptorFlags, ushort)"/>,
/// <see cref="WriteTableDescriptor"/>, <see cref="WriteAvailEntry"/>, <see cref="PushAvail"/> and
/// <see cref="SetAvailIndex"/> write raw values with no bookkeeping, to build any malformed ring;
/// <see cref="TryTakeUsedRaw"/> reads used elements without freeing anything.</para>
/// <para><b>Limits.</b> Not thread-safe; memory errors (a test set-up bug) throw
/// <see cref="GuestMemoryException"/>. Steady-state calls do not allocate.</para>
/// </remarks>
public sealed class TestDriver
{
    private readonly ushort[] _free;
    private readonly ushort[] _nextSlot;
    private readonly ushort[] _chainLength;
    private int _freeHead;
    private int _freeCount;
    private ushort _availShadow;
    private ushort _lastUsed;
    private ushort _lastKick;
    private int _outstanding;

    /// <summary>Creates a driver and initializes the queue's memory (all three parts zeroed).</summary>
    /// <param name="memory">The guest memory holding the queue.</param>
    /// <param name="layout">Where the queue lives.</param>
    /// <param name="eventIdx">Whether VIRTIO_F_EVENT_IDX is negotiated.</param>
    /// <param name="indirectDescriptors">Whether VIRTIO_F_INDIRECT_DESC is negotiated.</param>
    public TestDriver(GuestMemory memory, QueueLayout layout, bool eventIdx = false, bool indirectDescriptors = true)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(layout);
        Memory = memory;
        Layout = layout;
        EventIdx = eventIdx;
        IndirectDescriptors = indirectDescriptors;
        _free = new ushort[layout.Size];
        _nextSlot = new ushort[layout.Size];
        _chainLength = new ushort[layout.Size];
        memory.Fill(layout.DescriptorTable, layout.DescriptorTableBytes, 0).ThrowIfError(layout.DescriptorTable);
        memory.Fill(layout.AvailRing, layout.AvailRingBytes, 0).ThrowIfError(layout.AvailRing);
        memory.Fill(layout.UsedRing, layout.UsedRingBytes, 0).ThrowIfError(layout.UsedRing);
        ResetFreeList();
    }

    /// <summary>The guest memory holding the queue.</summary>
    public GuestMemory Memory { get; }

    /// <summary>Where the queue lives.</summary>
    public QueueLayout Layout { get; }

    /// <summary>The queue size.</summary>
    public ushort Size => Layout.Size;

    /// <summary>Whether VIRTIO_F_EVENT_IDX is negotiated.</summary>
    public bool EventIdx { get; }

    /// <summary>Whether VIRTIO_F_INDIRECT_DESC is negotiated.</summary>
    public bool IndirectDescriptors { get; }

    /// <summary>Descriptor slots not used by an outstanding chain.</summary>
    public int FreeDescriptors => _freeCount;

    /// <summary>Chains added and not yet taken back from the used ring.</summary>
    public int OutstandingChains => _outstanding;

    /// <summary>The driver's available index: chains added so far (published or not).</summary>
    public ushort AvailIndex => _availShadow;

    /// <summary>The used index the driver has consumed up to.</summary>
    public ushort LastUsedIndex => _lastUsed;

    /// <summary>The device's <c>used.idx</c> (acquire load).</summary>
    public ushort UsedIndex
    {
        get
        {
            GuestAddress address = Layout.UsedRing.CheckedAdd(SplitRing.IndexOffset);
            Memory.LoadU16Acquire(address, out ushort value).ThrowIfError(address);
            return value;
        }
    }

    /// <summary>The <c>used_event</c> field the driver publishes (EVENT_IDX): notify me when used.idx passes it.</summary>
    public ushort UsedEvent
    {
        get => ReadU16(Layout.UsedEventAddress);
        set => WriteU16(Layout.UsedEventAddress, value);
    }

    /// <summary>The <c>avail_event</c> field the device publishes (EVENT_IDX).</summary>
    public ushort AvailEvent => ReadU16(Layout.AvailEventAddress);

    /// <summary>The available ring's <see cref="AvailRingFlags.NoInterrupt"/> flag.</summary>
    public bool NoInterrupt
    {
        get => (ReadU16(Layout.AvailRing) & (ushort)AvailRingFlags.NoInterrupt) != 0;
        set => WriteU16(Layout.AvailRing, value ? (ushort)AvailRingFlags.NoInterrupt : (ushort)0);
    }

    /// <summary>The used ring's <see cref="UsedRingFlags.NoNotify"/> flag, as the device set it.</summary>
    public bool NoNotify => (ReadU16(Layout.UsedRing) & (ushort)UsedRingFlags.NoNotify) != 0;

    /// <summary>Copies size, ring addresses and features into <paramref name="queue"/> and sets it ready.</summary>
    /// <param name="queue">The device queue.</param>
    public void Configure(VirtQueue queue)
    {
        ArgumentNullException.ThrowIfNull(queue);
        queue.Size = Layout.Size;
        queue.DescriptorTable = Layout.DescriptorTable;
        queue.AvailRing = Layout.AvailRing;
        queue.UsedRing = Layout.UsedRing;
        queue.EventIdx = EventIdx;
        queue.IndirectDescriptors = IndirectDescriptors;
        queue.Ready = true;
    }

    /// <summary>Adds a direct chain (not yet published).</summary>
    /// <param name="buffers">The buffers in chain order; at least one.</param>
    /// <returns>The head index.</returns>
    /// <exception cref="InvalidOperationException">Not enough free descriptors.</exception>
    public ushort AddChain(params ReadOnlySpan<TestBuffer> buffers) =>
        TryAddChain(buffers, out ushort head)
            ? head
            : throw new InvalidOperationException($"{buffers.Length} descriptors wanted, {_freeCount} free.");

    /// <summary>Adds a direct chain (not yet published) when enough descriptors are free.</summary>
    /// <param name="buffers">The buffers in chain order; at least one.</param>
    /// <param name="head">The head index.</param>
    /// <returns><see langword="false"/> when fewer than <c>buffers.Length</c> descriptors are free.</returns>
    public bool TryAddChain(ReadOnlySpan<TestBuffer> buffers, out ushort head)
    {
        if (buffers.IsEmpty)
        {
            throw new ArgumentException("A chain needs at least one buffer.", nameof(buffers));
        }

        head = 0;
        if (buffers.Length > _freeCount)
        {
            return false;
        }

        head = TakeSlots(buffers.Length);
        ushort slot = head;
        for (int i = 0; i < buffers.Length; i++)
        {
            TestBuffer buffer = buffers[i];
            bool last = i == buffers.Length - 1;
            DescriptorFlags flags = (buffer.Writable ? DescriptorFlags.Write : DescriptorFlags.None) | (last ? DescriptorFlags.None : DescriptorFlags.Next);
            ushort next = last ? (ushort)0 : _nextSlot[slot];
            WriteDescriptor(slot, buffer.Address, buffer.Length, flags, next);
            slot = next;
        }

        PushAvail(head);
        return true;
    }

    /// <summary>
    /// Adds a chain of one INDIRECT descriptor whose table, written at <paramref name="tableAddress"/>, holds
    /// the buffers (not yet published).
    /// </summary>
    /// <param name="tableAddress">Where to write the indirect table (16 bytes per buffer).</param>
    /// <param name="buffers">The buffers in chain order; at least one.</param>
    /// <returns>The head index.</returns>
    public ushort AddIndirectChain(GuestAddress tableAddress, params ReadOnlySpan<TestBuffer> buffers)
    {
        if (buffers.IsEmpty)
        {
            throw new ArgumentException("A chain needs at least one buffer.", nameof(buffers));
        }

        if (_freeCount == 0)
        {
            throw new InvalidOperationException("No free descriptor for the indirect descriptor.");
        }

        for (int i = 0; i < buffers.Length; i++)
        {
            TestBuffer buffer = buffers[i];
            bool last = i == buffers.Length - 1;
            DescriptorFlags flags = (buffer.Writable ? DescriptorFlags.Write : DescriptorFlags.None) | (last ? DescriptorFlags.None : DescriptorFlags.Next);
            WriteTableDescriptor(tableAddress, i, buffer.Address, buffer.Length, flags, last ? (ushort)0 : (ushort)(i + 1));
        }

        ushort head = TakeSlots(1);
        WriteDescriptor(head, tableAddress, checked((uint)(buffers.Length * Descriptor.SizeInBytes)), DescriptorFlags.Indirect, 0);
        PushAvail(head);
        return head;
    }

    /// <summary>Publishes every chain added so far: release store of <c>avail.idx</c>.</summary>
    public void Publish()
    {
        GuestAddress address = Layout.AvailRing.CheckedAdd(SplitRing.IndexOffset);
        Memory.StoreU16Release(address, _availShadow).ThrowIfError(address);
    }

    /// <summary>Takes the next used element and frees its chain's descriptors.</summary>
    /// <param name="element">The element.</param>
    /// <returns><see langword="false"/> when the device has returned nothing new.</returns>
    /// <exception cref="InvalidOperationException">The device returned a head that is not an outstanding chain.</exception>
    public bool TryTakeUsed(out UsedElement element)
    {
        if (!TryTakeUsedRaw(out element))
        {
            return false;
        }

        if (element.Id >= Size || _chainLength[element.Id] == 0)
        {
            throw new InvalidOperationException($"The device returned head {element.Id}, which is not an outstanding chain.");
        }

        ReleaseChain((ushort)element.Id);
        return true;
    }

    /// <summary>Reads the next used element without any bookkeeping (for hostile-input tests).</summary>
    /// <param name="element">The element.</param>
    /// <returns><see langword="false"/> when the device has returned nothing new.</returns>
    public bool TryTakeUsedRaw(out UsedElement element)
    {
        if (UsedIndex == _lastUsed)
        {
            element = default;
            return false;
        }

        element = ReadUsedElement(_lastUsed);
        _lastUsed++;
        return true;
    }

    /// <summary>Reads the used element at ring position <c>index % size</c>.</summary>
    /// <param name="index">A free-running used index.</param>
    /// <returns>The element.</returns>
    public UsedElement ReadUsedElement(ushort index)
    {
        GuestAddress address = Layout.UsedRing.CheckedAdd(SplitRing.RingOffset + ((uint)(index % Size) * SplitRing.UsedElementSize));
        Span<byte> raw = stackalloc byte[8];
        Memory.Read(address, raw).ThrowIfError(address);
        return new UsedElement(BinaryPrimitives.ReadUInt32LittleEndian(raw), BinaryPrimitives.ReadUInt32LittleEndian(raw[4..]));
    }

    /// <summary>
    /// Linux's <c>virtqueue_kick_prepare</c>: after a full fence, whether the device wants a notification for
    /// the chains published since the previous call (EVENT_IDX: <c>avail_event</c> formula; else unless
    /// the device set <see cref="UsedRingFlags.NoNotify"/>).
    /// </summary>
    /// <returns>Whether to kick the device.</returns>
    public bool KickNeeded()
    {
        Interlocked.MemoryBarrier();
        ushort oldIndex = _lastKick;
        ushort newIndex = _availShadow;
        _lastKick = newIndex;
        return EventIdx ? EventIndex.NeedsEvent(AvailEvent, newIndex, oldIndex) : !NoNotify;
    }

    /// <summary>
    /// Linux's <c>virtqueue_enable_cb</c>: asks for used-buffer notifications (EVENT_IDX: <c>used_event</c> =
    /// the last used index consumed; else clears <see cref="AvailRingFlags.NoInterrupt"/>).
    /// </summary>
    /// <returns>Whether used elements are already pending (take them instead of waiting).</returns>
    public bool EnableInterrupts()
    {
        if (EventIdx)
        {
            UsedEvent = _lastUsed;
        }
        else
        {
            NoInterrupt = false;
        }

        Interlocked.MemoryBarrier();
        return UsedIndex != _lastUsed;
    }

    /// <summary>Linux's <c>virtqueue_disable_cb</c>: without EVENT_IDX sets <see cref="AvailRingFlags.NoInterrupt"/>; with it, moves <c>used_event</c> far away.</summary>
    public void DisableInterrupts()
    {
        if (EventIdx)
        {
            UsedEvent = (ushort)(_lastUsed - 1 - 0x7fff);
        }
        else
        {
            NoInterrupt = true;
        }
    }

    /// <summary>Writes raw descriptor <paramref name="index"/> of the descriptor table (no bookkeeping).</summary>
    /// <param name="index">The descriptor index; must be below the size.</param>
    /// <param name="address">The buffer address.</param>
    /// <param name="length">The buffer length.</param>
    /// <param name="flags">The flags, any bits.</param>
    /// <param name="next">The next index, any value.</param>
    public void WriteDescriptor(ushort index, GuestAddress address, uint length, DescriptorFlags flags, ushort next)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Size);
        WriteTableDescriptor(Layout.DescriptorTable, index, address, length, flags, next);
    }

    /// <summary>Writes raw descriptor <paramref name="index"/> of the descriptor table (no bookkeeping).</summary>
    /// <param name="index">The descriptor index; must be below the size.</param>
    /// <param name="descriptor">The descriptor.</param>
    public void WriteDescriptor(ushort index, Descriptor descriptor) =>
        WriteDescriptor(index, descriptor.Address, descriptor.Length, descriptor.Flags, descriptor.Next);

    /// <summary>Reads descriptor <paramref name="index"/> of the descriptor table.</summary>
    /// <param name="index">The descriptor index; must be below the size.</param>
    /// <returns>The descriptor.</returns>
    public Descriptor ReadDescriptor(ushort index)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Size);
        GuestAddress address = Layout.DescriptorTable.CheckedAdd((ulong)index * Descriptor.SizeInBytes);
        Span<byte> raw = stackalloc byte[Descriptor.SizeInBytes];
        Memory.Read(address, raw).ThrowIfError(address);
        return new Descriptor(
            new GuestAddress(BinaryPrimitives.ReadUInt64LittleEndian(raw)),
            BinaryPrimitives.ReadUInt32LittleEndian(raw[8..]),
            (DescriptorFlags)BinaryPrimitives.ReadUInt16LittleEndian(raw[12..]),
            BinaryPrimitives.ReadUInt16LittleEndian(raw[14..]));
    }

    /// <summary>Writes entry <paramref name="index"/> of a descriptor table at <paramref name="table"/> (e.g. an indirect table).</summary>
    /// <param name="table">The table's guest address.</param>
    /// <param name="index">The entry index.</param>
    /// <param name="address">The buffer address.</param>
    /// <param name="length">The buffer length.</param>
    /// <param name="flags">The flags, any bits.</param>
    /// <param name="next">The next index, any value.</param>
    public void WriteTableDescriptor(GuestAddress table, int index, GuestAddress address, uint length, DescriptorFlags flags, ushort next)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        GuestAddress target = table.CheckedAdd((ulong)index * Descriptor.SizeInBytes);
        Span<byte> raw = stackalloc byte[Descriptor.SizeInBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(raw, address.Value);
        BinaryPrimitives.WriteUInt32LittleEndian(raw[8..], length);
        BinaryPrimitives.WriteUInt16LittleEndian(raw[12..], (ushort)flags);
        BinaryPrimitives.WriteUInt16LittleEndian(raw[14..], next);
        Memory.Write(target, raw).ThrowIfError(target);
    }

    /// <summary>Writes available ring entry at position <c>index % size</c> (no bookkeeping, not published).</summary>
    /// <param name="index">A free-running available index.</param>
    /// <param name="head">The head index to store, any value.</param>
    public void WriteAvailEntry(ushort index, ushort head) =>
        WriteU16(Layout.AvailRing.CheckedAdd(SplitRing.RingOffset + ((uint)(index % Size) * SplitRing.AvailEntrySize)), head);

    /// <summary>Appends <paramref name="head"/> to the available ring at <see cref="AvailIndex"/> (not published).</summary>
    /// <param name="head">The head index, any value.</param>
    public void PushAvail(ushort head)
    {
        WriteAvailEntry(_availShadow, head);
        _availShadow++;
    }

    /// <summary>Sets the driver's available index and publishes it as <c>avail.idx</c>, whatever it is.</summary>
    /// <param name="index">The raw index.</param>
    public void SetAvailIndex(ushort index)
    {
        _availShadow = index;
        Publish();
    }

    /// <summary>Forgets every outstanding chain and frees all descriptors (the rings are left as they are).</summary>
    public void ResetFreeList()
    {
        for (int i = 0; i < _free.Length; i++)
        {
            _free[i] = (ushort)i;
            _chainLength[i] = 0;
        }

        _freeHead = 0;
        _freeCount = _free.Length;
        _outstanding = 0;
    }

    private ushort TakeSlots(int count)
    {
        int mask = _free.Length - 1;
        ushort head = _free[_freeHead];
        ushort previous = head;
        for (int i = 1; i < count; i++)
        {
            ushort slot = _free[(_freeHead + i) & mask];
            _nextSlot[previous] = slot;
            previous = slot;
        }

        _freeHead = (_freeHead + count) & mask;
        _freeCount -= count;
        _chainLength[head] = (ushort)count;
        _outstanding++;
        return head;
    }

    private void ReleaseChain(ushort head)
    {
        int mask = _free.Length - 1;
        int count = _chainLength[head];
        _chainLength[head] = 0;
        ushort slot = head;
        for (int i = 0; i < count; i++)
        {
            _free[(_freeHead + _freeCount) & mask] = slot;
            _freeCount++;
            slot = _nextSlot[slot];
        }

        _outstanding--;
    }

    private ushort ReadU16(GuestAddress address)
    {
        Memory.ReadU16(address, out ushort value).ThrowIfError(address);
        return value;
    }

    private void WriteU16(GuestAddress address, ushort value) => Memory.WriteU16(address, value).ThrowIfError(address);
}
