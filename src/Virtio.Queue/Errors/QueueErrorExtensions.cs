namespace Virtio.Queue;

/// <summary>Readable messages for <see cref="QueueError"/>.</summary>
public static class QueueErrorExtensions
{
    /// <summary>A one-line English description of the error.</summary>
    /// <param name="error">The error.</param>
    /// <returns>The description.</returns>
    public static string Describe(this QueueError error) => error switch
    {
        QueueError.None => "no error",
        QueueError.SizeZero => "the queue size is 0",
        QueueError.SizeTooLarge => "the queue size is above 32768",
        QueueError.SizeNotPowerOfTwo => "the queue size is not a power of two",
        QueueError.SizeAboveMaximum => "the queue size is above the device's maximum",
        QueueError.DescriptorTableMisaligned => "the descriptor table is not 16-byte aligned",
        QueueError.AvailRingMisaligned => "the available ring is not 2-byte aligned",
        QueueError.UsedRingMisaligned => "the used ring is not 4-byte aligned",
        QueueError.DescriptorTableOutsideMemory => "the descriptor table is not inside guest memory",
        QueueError.AvailRingOutsideMemory => "the available ring is not inside guest memory",
        QueueError.UsedRingOutsideMemory => "the used ring is not inside guest memory",
        QueueError.NotReady => "the queue is not ready",
        QueueError.AvailIndexInvalid => "the driver's available index is more than the queue size ahead",
        QueueError.RingOutsideMemory => "a ring could not be accessed in guest memory",
        QueueError.MemoryDisposed => "the guest memory has been unmapped",
        QueueError.HeadIndexOutOfRange => "the chain's head index is not below the queue size",
        QueueError.NextIndexOutOfRange => "a next index is not below the queue or indirect table size",
        QueueError.ChainTooLong => "the chain has more descriptors than the queue size (a loop)",
        QueueError.IndirectWithNext => "a descriptor has both the INDIRECT and NEXT flags",
        QueueError.NestedIndirect => "an indirect table contains an INDIRECT descriptor",
        QueueError.InvalidIndirectLength => "an indirect table length is 0, not a multiple of 16, or above 32768 entries",
        QueueError.IndirectNotNegotiated => "an INDIRECT descriptor was used without VIRTIO_F_INDIRECT_DESC",
        QueueError.ReadableAfterWritable => "a device-readable descriptor follows a device-writable one",
        QueueError.DescriptorAddressOverflow => "a descriptor's address plus length overflows 64 bits",
        QueueError.DescriptorOutsideMemory => "a descriptor's buffer is not inside guest memory",
        QueueError.RingFieldCrossesRegions => "a ring's flags, index or event field straddles a guest memory region boundary",
        _ => "unknown queue error",
    };
}
