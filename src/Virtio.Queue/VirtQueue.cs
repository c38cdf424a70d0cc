using System.Runtime.CompilerServices;
using Virtio.Memory;

namespace Virtio.Queue;

/// <summary>
/// The device side of one split virtqueue: its configuration, popping available descriptor chains,
/// adding used elements, and notification suppression in both directions (VirtQueue.Notifications.cs).
/// </summary>
/// <remarks>
/// <para><b>Configuration.</b> The transport (vhost-user, MMIO, PCI) sets <see cref="Size"/>, the three
/// ring addresses, the negotiated features (<see cref="EventIdx"/>, <see cref="IndirectDescriptors"/>)
/// and <see cref="Ready"/>. <see cref="Validate"/> says exactly what is wrong with a configuration. The
/// data-path methods validate lazily: the first call after a configuration change, or with a different
/// <see cref="GuestMemory"/> instance, validates and maps the rings once; later calls reuse the mapping
/// and only check that the memory is still alive. A configuration error is returned by every data-path
/// call until it is fixed.</para>
/// <para><b>Hot path.</b> <see cref="TryPopChain"/>, <see cref="AddUsed"/>, <see cref="NeedsNotification"/>
/// and the chain walk never allocate and never throw: errors are <see cref="QueueError"/> values. The
/// driver's <c>avail.idx</c> is read (with acquire semantics) only when the device has consumed every
/// entry it saw last time, so a batch of chains costs one index load.</para>
/// <para><b>Memory ordering</b> (virtqueue.md): <c>avail.idx</c> is an acquire load before ring entries and
/// descriptors are read; used elements are plain stores followed by a release store of <c>used.idx</c>;
/// notification decisions start with a full fence.</para>
/// <para><b>Hostile driver.</b> An <c>avail.idx</c> more than <see cref="Size"/> ahead of
/// <see cref="NextAvail"/> is reported as <see cref="QueueError.AvailIndexInvalid"/> (the ring is corrupt;
/// the caller should stop using the queue). Bad descriptors surface while walking the popped
/// <see cref="DescriptorChain"/>, whose head the caller can still return.</para>
/// <para><b>Threading.</b> A queue is owned by one thread at a time; it holds no locks.</para>
/// </remarks>
public sealed partial class VirtQueue
{
    private ushort _size;
    private GuestAddress _descriptorTable;
    private GuestAddress _availRing;
    private GuestAddress _usedRing;
    private bool _ready;
    private bool _eventIdx;

    private ushort _nextAvail;
    private ushort _nextUsed;
    private ushort _publishedUsed;
    private ushort _cachedAvailIndex;
    private ushort _signalledUsed;
    private bool _signalledValid;

    private GuestMemory? _bound;
    private QueueBinding? _binding;
    private GuestArea _avail;
    private GuestArea _used;
    private uint _mask;
    private uint _usedEventOffset;
    private uint _availEventOffset;

    /// <summary>Creates a queue whose size may be configured up to <paramref name="maxSize"/>.</summary>
    /// <param name="maxSize">The maximum queue size the device offers: a power of two in 1..32768.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxSize"/> is not a valid queue size.</exception>
    public VirtQueue(ushort maxSize)
    {
        if (!SplitRing.IsValidSize(maxSize))
        {
            throw new ArgumentOutOfRangeException(nameof(maxSize), maxSize, "The maximum queue size must be a power of two in 1..32768.");
        }

        MaxSize = maxSize;
        _size = maxSize;
    }

    /// <summary>The maximum queue size the device offers.</summary>
    public ushort MaxSize { get; }

    /// <summary>The queue size the driver chose (initially <see cref="MaxSize"/>).</summary>
    public ushort Size
    {
        get => _size;
        set
        {
            _size = value;
            Unbind();
        }
    }

    /// <summary>Guest address of the descriptor table (16-byte aligned).</summary>
    public GuestAddress DescriptorTable
    {
        get => _descriptorTable;
        set
        {
            _descriptorTable = value;
            Unbind();
        }
    }

    /// <summary>Guest address of the available (driver) ring (2-byte aligned).</summary>
    public GuestAddress AvailRing
    {
        get => _availRing;
        set
        {
            _availRing = value;
            Unbind();
        }
    }

    /// <summary>Guest address of the used (device) ring (4-byte aligned).</summary>
    public GuestAddress UsedRing
    {
        get => _usedRing;
        set
        {
            _usedRing = value;
            Unbind();
        }
    }

    /// <summary>Whether the driver enabled the queue.</summary>
    public bool Ready
    {
        get => _ready;
        set
        {
            _ready = value;
            Unbind();
        }
    }

    /// <summary>Whether VIRTIO_F_EVENT_IDX was negotiated.</summary>
    public bool EventIdx
    {
        get => _eventIdx;
        set
        {
            _eventIdx = value;
            _signalledValid = false;
        }
    }

    /// <summary>Whether VIRTIO_F_INDIRECT_DESC was negotiated (chains popped afterwards follow it).</summary>
    public bool IndirectDescriptors { get; set; }

    /// <summary>
    /// The index of the next available ring entry the device will read (vhost-user
    /// GET/SET_VRING_BASE). Setting it forces <c>avail.idx</c> to be re-read.
    /// </summary>
    public ushort NextAvail
    {
        get => _nextAvail;
        set
        {
            _nextAvail = value;
            _cachedAvailIndex = value;
        }
    }

    /// <summary>
    /// The index of the next used ring element the device will write. Setting it also sets the
    /// published index (nothing is written) and restarts notification suppression.
    /// </summary>
    public ushort NextUsed
    {
        get => _nextUsed;
        set
        {
            _nextUsed = value;
            _publishedUsed = value;
            _signalledValid = false;
        }
    }

    /// <summary>The <c>used.idx</c> the driver can see: the index of the last <see cref="PublishUsed"/> or <see cref="AddUsed"/>.</summary>
    public ushort PublishedUsed => _publishedUsed;

    /// <summary>The number of used elements added with <see cref="AddUsedDeferred"/> and not yet published.</summary>
    public int PendingUsed => (ushort)(_nextUsed - _publishedUsed);

    /// <summary>Returns the queue to its initial state: not ready, maximum size, zero addresses and indices, no features.</summary>
    public void Reset()
    {
        _size = MaxSize;
        _descriptorTable = default;
        _availRing = default;
        _usedRing = default;
        _ready = false;
        _eventIdx = false;
        IndirectDescriptors = false;
        _nextAvail = 0;
        _cachedAvailIndex = 0;
        _nextUsed = 0;
        _publishedUsed = 0;
        _signalledUsed = 0;
        _signalledValid = false;
        Unbind();
    }

    /// <summary>Checks the configuration against <paramref name="memory"/>; the first problem found wins.</summary>
    /// <param name="memory">The guest memory the rings must lie in.</param>
    /// <returns>
    /// A size error, an alignment error, a ring-outside-memory error, <see cref="QueueError.NotReady"/>,
    /// <see cref="QueueError.MemoryDisposed"/>, or <see cref="QueueError.None"/>.
    /// </returns>
    public QueueError Validate(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        if (memory.IsDisposed)
        {
            return QueueError.MemoryDisposed;
        }

        ushort size = _size;
        if (size == 0)
        {
            return QueueError.SizeZero;
        }

        if (size > SplitRing.MaxQueueSize)
        {
            return QueueError.SizeTooLarge;
        }

        if ((size & (size - 1)) != 0)
        {
            return QueueError.SizeNotPowerOfTwo;
        }

        if (size > MaxSize)
        {
            return QueueError.SizeAboveMaximum;
        }

        if (!_descriptorTable.IsAligned(SplitRing.DescriptorTableAlignment))
        {
            return QueueError.DescriptorTableMisaligned;
        }

        if (!_availRing.IsAligned(SplitRing.AvailRingAlignment))
        {
            return QueueError.AvailRingMisaligned;
        }

        if (!_usedRing.IsAligned(SplitRing.UsedRingAlignment))
        {
            return QueueError.UsedRingMisaligned;
        }

        if (memory.CheckRange(_descriptorTable, SplitRing.DescriptorTableBytes(size)) != MemoryError.None)
        {
            return QueueError.DescriptorTableOutsideMemory;
        }

        if (memory.CheckRange(_availRing, SplitRing.AvailRingBytes(size)) != MemoryError.None)
        {
            return QueueError.AvailRingOutsideMemory;
        }

        if (memory.CheckRange(_usedRing, SplitRing.UsedRingBytes(size)) != MemoryError.None)
        {
            return QueueError.UsedRingOutsideMemory;
        }

        // A ring may span adjacent regions, but its flags, index and event fields are accessed atomically:
        // none of them may straddle a region boundary (vhost-user frontends may place boundaries anywhere).
        if (Straddles(memory, _availRing, 0) || Straddles(memory, _availRing, 2) || Straddles(memory, _availRing, SplitRing.UsedEventOffset(size))
            || Straddles(memory, _usedRing, 0) || Straddles(memory, _usedRing, 2) || Straddles(memory, _usedRing, SplitRing.AvailEventOffset(size)))
        {
            return QueueError.RingFieldCrossesRegions;
        }

        return _ready ? QueueError.None : QueueError.NotReady;
    }

    private static bool Straddles(GuestMemory memory, GuestAddress ring, uint offset) =>
        memory.TryGetSpan(new GuestAddress(ring.Value + offset), sizeof(ushort), out _) == MemoryError.CrossesRegions;

    /// <summary>Reads the driver's <c>avail.idx</c> (acquire).</summary>
    /// <param name="memory">The guest memory.</param>
    /// <param name="availIndex">The index, or 0 on error.</param>
    /// <returns>The error, or <see cref="QueueError.None"/>.</returns>
    public QueueError ReadAvailIndex(GuestMemory memory, out ushort availIndex)
    {
        availIndex = 0;
        QueueError error = EnsureBound(memory);
        if (error != QueueError.None)
        {
            return error;
        }

        return _avail.LoadU16Acquire(memory, SplitRing.IndexOffset, out availIndex) == MemoryError.None
            ? QueueError.None
            : QueueError.RingOutsideMemory;
    }

    /// <summary>Whether the driver has made chains available that the device has not popped yet.</summary>
    /// <param name="memory">The guest memory.</param>
    /// <returns><see langword="true"/> when <see cref="TryPopChain"/> would return a chain or a ring error.</returns>
    public bool HasAvailable(GuestMemory memory)
    {
        if (_cachedAvailIndex != _nextAvail && ReferenceEquals(memory, _bound) && !memory.IsDisposed)
        {
            return true;
        }

        return ReadAvailIndex(memory, out ushort availIndex) == QueueError.None && availIndex != _nextAvail;
    }

    /// <summary>Pops the next available descriptor chain.</summary>
    /// <param name="memory">The guest memory.</param>
    /// <param name="chain">The chain, positioned at its head; default when none was popped.</param>
    /// <param name="error">
    /// <see cref="QueueError.None"/> when a chain was popped or the ring is empty; otherwise a configuration
    /// or ring-level error (for example <see cref="QueueError.AvailIndexInvalid"/>).
    /// </param>
    /// <returns>
    /// <see langword="true"/> when a chain was popped (its descriptors are checked while walking it);
    /// <see langword="false"/> when the ring is empty or on error.
    /// </returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryPopChain(GuestMemory memory, out DescriptorChain chain, out QueueError error)
    {
        ushort next = _nextAvail;
        if (next == _cachedAvailIndex || !ReferenceEquals(memory, _bound) || memory.IsDisposed)
        {
            error = RefreshAvail(memory, next);
            if (error != QueueError.None || next == _cachedAvailIndex)
            {
                chain = default;
                return false;
            }
        }

        if (_avail.ReadU16(memory, SplitRing.RingOffset + ((next & _mask) * SplitRing.AvailEntrySize), out ushort head) != MemoryError.None)
        {
            chain = default;
            error = QueueError.RingOutsideMemory;
            return false;
        }

        _nextAvail = (ushort)(next + 1);
        chain = new DescriptorChain(_binding!, head, IndirectDescriptors);
        error = QueueError.None;
        return true;
    }

    /// <summary>Adds a used element and publishes it (release store of <c>used.idx</c>).</summary>
    /// <param name="memory">The guest memory.</param>
    /// <param name="headIndex">The head index of the chain being returned.</param>
    /// <param name="length">The number of bytes the device wrote into the chain's writable buffers.</param>
    /// <returns>The error (<see cref="QueueError.HeadIndexOutOfRange"/> for a head not below the size), or <see cref="QueueError.None"/>.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public QueueError AddUsed(GuestMemory memory, ushort headIndex, uint length)
    {
        QueueError error = WriteUsedElement(memory, headIndex, length);
        return error != QueueError.None ? error : StoreUsedIndex(memory);
    }

    /// <summary>
    /// Writes a used element without publishing it: the driver sees it after <see cref="PublishUsed"/>.
    /// Batching saves one release store per chain.
    /// </summary>
    /// <param name="memory">The guest memory.</param>
    /// <param name="headIndex">The head index of the chain being returned.</param>
    /// <param name="length">The number of bytes the device wrote into the chain's writable buffers.</param>
    /// <returns>The error, or <see cref="QueueError.None"/>.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public QueueError AddUsedDeferred(GuestMemory memory, ushort headIndex, uint length) =>
        WriteUsedElement(memory, headIndex, length);

    /// <summary>Publishes every used element added so far: a release store of <c>used.idx</c> = <see cref="NextUsed"/>.</summary>
    /// <param name="memory">The guest memory.</param>
    /// <returns>The error, or <see cref="QueueError.None"/>.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public QueueError PublishUsed(GuestMemory memory)
    {
        QueueError error = EnsureBound(memory);
        return error != QueueError.None ? error : StoreUsedIndex(memory);
    }

    /// <summary>The release store of <c>used.idx</c> = <see cref="NextUsed"/> that publishes the used elements written so far.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private QueueError StoreUsedIndex(GuestMemory memory)
    {
        ushort next = _nextUsed;
        if (_used.StoreU16Release(memory, SplitRing.IndexOffset, next) != MemoryError.None)
        {
            return QueueError.RingOutsideMemory;
        }

        _publishedUsed = next;
        return QueueError.None;
    }

    /// <summary>Writes the used element at <see cref="NextUsed"/> and advances it; publishes nothing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private QueueError WriteUsedElement(GuestMemory memory, ushort headIndex, uint length)
    {
        if (!ReferenceEquals(memory, _bound) || memory.IsDisposed)
        {
            QueueError error = Bind(memory);
            if (error != QueueError.None)
            {
                return error;
            }
        }

        if (headIndex >= _size)
        {
            return QueueError.HeadIndexOutOfRange;
        }

        ushort next = _nextUsed;
        uint offset = SplitRing.RingOffset + ((next & _mask) * SplitRing.UsedElementSize);
        if (_used.WriteUsedElement(memory, offset, headIndex, length) != MemoryError.None)
        {
            return QueueError.RingOutsideMemory;
        }

        _nextUsed = (ushort)(next + 1);
        return QueueError.None;
    }

    /// <summary>Binds if needed and re-reads <c>avail.idx</c> into the cache.</summary>
    private QueueError RefreshAvail(GuestMemory memory, ushort next)
    {
        QueueError error = EnsureBound(memory);
        if (error != QueueError.None)
        {
            return error;
        }

        if (next != _cachedAvailIndex)
        {
            return QueueError.None;
        }

        if (_avail.LoadU16Acquire(memory, SplitRing.IndexOffset, out ushort availIndex) != MemoryError.None)
        {
            return QueueError.RingOutsideMemory;
        }

        if ((ushort)(availIndex - next) > _size)
        {
            return QueueError.AvailIndexInvalid;
        }

        _cachedAvailIndex = availIndex;
        return QueueError.None;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private QueueError EnsureBound(GuestMemory memory) =>
        ReferenceEquals(memory, _bound) && !memory.IsDisposed ? QueueError.None : Bind(memory);

    /// <summary>Validates the configuration against <paramref name="memory"/> and maps the rings.</summary>
    private QueueError Bind(GuestMemory memory)
    {
        _bound = null;
        QueueError error = Validate(memory);
        if (error != QueueError.None)
        {
            return error;
        }

        uint size = _size;
        if (GuestArea.Map(memory, _descriptorTable, SplitRing.DescriptorTableBytes(size), 1, out GuestArea descriptors) != MemoryError.None)
        {
            return QueueError.DescriptorTableOutsideMemory;
        }

        if (GuestArea.Map(memory, _availRing, SplitRing.AvailRingBytes(size), SplitRing.AvailRingAlignment, out _avail) != MemoryError.None)
        {
            return QueueError.AvailRingOutsideMemory;
        }

        if (GuestArea.Map(memory, _usedRing, SplitRing.UsedRingBytes(size), SplitRing.UsedRingAlignment, out _used) != MemoryError.None)
        {
            return QueueError.UsedRingOutsideMemory;
        }

        _binding = new QueueBinding(memory, descriptors, RegionHint.For(memory), _size);
        _mask = size - 1;
        _usedEventOffset = SplitRing.UsedEventOffset(size);
        _availEventOffset = SplitRing.AvailEventOffset(size);
        _bound = memory;
        return QueueError.None;
    }

    private void Unbind() => _bound = null;
}
