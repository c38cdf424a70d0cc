namespace Virtio.Memory;

/// <summary>
/// Why a guest memory access was refused. Every accessor of <see cref="GuestMemory"/> returns one of
/// these instead of throwing, so that hot paths handle hostile addresses as ordinary values.
/// </summary>
public enum MemoryError
{
    /// <summary>The access succeeded.</summary>
    None = 0,

    /// <summary>The start address is not inside any guest memory region.</summary>
    InvalidAddress,

    /// <summary>The range starts inside guest memory but runs past its end or into a hole between regions.</summary>
    RangeOutsideMemory,

    /// <summary>Address plus length overflows the 64-bit guest address space.</summary>
    AddressOverflow,

    /// <summary>An atomic access was asked for at an address that is not naturally aligned.</summary>
    Misaligned,

    /// <summary>An atomic or contiguous access was asked for a range that crosses a region boundary.</summary>
    CrossesRegions,

    /// <summary>The guest memory was disposed (unmapped); nothing can be read or written any more.</summary>
    Disposed,
}
