namespace Virtio.Memory;

/// <summary>Readable messages for <see cref="MemoryError"/>.</summary>
public static class MemoryErrorExtensions
{
    /// <summary>A one-line English description of the error.</summary>
    /// <param name="error">The error.</param>
    /// <returns>The description.</returns>
    public static string Describe(this MemoryError error) => error switch
    {
        MemoryError.None => "no error",
        MemoryError.InvalidAddress => "the address is not inside guest memory",
        MemoryError.RangeOutsideMemory => "the range runs past the end of guest memory",
        MemoryError.AddressOverflow => "address plus length overflows the guest address space",
        MemoryError.Misaligned => "the address is not aligned for an atomic access",
        MemoryError.CrossesRegions => "the range crosses a guest memory region boundary",
        MemoryError.Disposed => "the guest memory has been unmapped",
        _ => "unknown guest memory error",
    };

    /// <summary>Throws <see cref="GuestMemoryException"/> unless <paramref name="error"/> is <see cref="MemoryError.None"/>.</summary>
    /// <param name="error">The error returned by an accessor.</param>
    /// <param name="address">The address that was accessed, for the message.</param>
    /// <remarks>For callers at the edges (setup, tests); hot paths inspect the value instead.</remarks>
    public static void ThrowIfError(this MemoryError error, GuestAddress address)
    {
        if (error != MemoryError.None)
        {
            throw new GuestMemoryException(error, address);
        }
    }
}
