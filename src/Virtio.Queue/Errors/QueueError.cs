namespace Virtio.Queue;

/// <summary>
/// Why a queue operation was refused. A closed set: every method of the queue and the descriptor chain
/// returns one of these values instead of throwing, because every one of them can
/// be caused by a hostile or buggy guest. <see cref="QueueErrorExtensions.Describe"/> gives a readable message.
/// </summary>
public enum QueueError
{
    /// <summary>The operation succeeded.</summary>
    None = 0,

    // ---- Configuration (Validate) ----

    /// <summary>The queue size is 0.</summary>
    SizeZero,

    /// <summary>The queue size is above 32768, the largest split-queue size.</summary>
    SizeTooLarge,

    /// <summary>The queue size is not a power of two.</summary>
    SizeNotPowerOfTwo,

    /// <summary>The queue size is above the maximum the device offered.</summary>
    SizeAboveMaximum,

    /// <summary>The descriptor table address is not 16-byte aligned.</summary>
    DescriptorTableMisaligned,

    /// <summary>The available ring address is not 2-byte aligned.</summary>
    AvailRingMisaligned,

    /// <summary>The used ring address is not 4-byte aligned.</summary>
    UsedRingMisaligned,

    /// <summary>The descriptor table does not lie entirely inside guest memory.</summary>
    DescriptorTableOutsideMemory,

    /// <summary>The available ring does not lie entirely inside guest memory.</summary>
    AvailRingOutsideMemory,

    /// <summary>The used ring does not lie entirely inside guest memory.</summary>
    UsedRingOutsideMemory,

    /// <summary>The queue is not ready (the driver has not enabled it).</summary>
    NotReady,

    // ---- Ring level ----

    /// <summary>The driver's <c>avail.idx</c> is more than the queue size ahead of the device: the ring is corrupt.</summary>
    AvailIndexInvalid,

    /// <summary>A validated ring could not be accessed (its memory changed under the queue).</summary>
    RingOutsideMemory,

    /// <summary>The guest memory was unmapped; nothing can be read or written any more.</summary>
    MemoryDisposed,

    // ---- Descriptor chain ----

    /// <summary>The head index taken from the available ring is not below the queue size.</summary>
    HeadIndexOutOfRange,

    /// <summary>A <c>next</c> index is not below the queue size (or the indirect table size).</summary>
    NextIndexOutOfRange,

    /// <summary>The chain has more descriptors than the queue size (indirect entries counted): a loop.</summary>
    ChainTooLong,

    /// <summary>A descriptor has both the INDIRECT and the NEXT flag.</summary>
    IndirectWithNext,

    /// <summary>A descriptor inside an indirect table has the INDIRECT flag.</summary>
    NestedIndirect,

    /// <summary>An indirect table length is 0, not a multiple of 16, or more than 32768 entries.</summary>
    InvalidIndirectLength,

    /// <summary>A descriptor has the INDIRECT flag but VIRTIO_F_INDIRECT_DESC was not negotiated.</summary>
    IndirectNotNegotiated,

    /// <summary>A device-readable descriptor follows a device-writable one.</summary>
    ReadableAfterWritable,

    /// <summary>A descriptor's address plus length overflows the 64-bit guest address space.</summary>
    DescriptorAddressOverflow,

    /// <summary>A descriptor's buffer (or indirect table) is not entirely inside guest memory.</summary>
    DescriptorOutsideMemory,

    /// <summary>A ring's flags, index or event field straddles a guest memory region boundary, so it cannot be
    /// accessed atomically.</summary>
    RingFieldCrossesRegions,
}
