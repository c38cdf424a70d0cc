using Virtio.Memory;

namespace Virtio.Queue.Testing;

/// <summary>One buffer of a chain the <see cref="TestDriver"/> builds: a guest range and its direction.</summary>
/// <param name="Address">The guest physical address of the buffer.</param>
/// <param name="Length">The buffer length in bytes.</param>
/// <param name="Writable">Whether the device may write it (<see cref="DescriptorFlags.Write"/>).</param>
public readonly record struct TestBuffer(GuestAddress Address, uint Length, bool Writable)
{
    /// <summary>A buffer the device reads (driver to device).</summary>
    /// <param name="address">The guest physical address.</param>
    /// <param name="length">The length in bytes.</param>
    /// <returns>The buffer.</returns>
    public static TestBuffer DeviceReadable(GuestAddress address, uint length) => new(address, length, false);

    /// <summary>A buffer the device writes (device to driver).</summary>
    /// <param name="address">The guest physical address.</param>
    /// <param name="length">The length in bytes.</param>
    /// <returns>The buffer.</returns>
    public static TestBuffer DeviceWritable(GuestAddress address, uint length) => new(address, length, true);

    /// <summary>A device-readable buffer at a raw address.</summary>
    /// <param name="address">The guest physical address.</param>
    /// <param name="length">The length in bytes.</param>
    /// <returns>The buffer.</returns>
    public static TestBuffer DeviceReadable(ulong address, uint length) => new(new GuestAddress(address), length, false);

    /// <summary>A device-writable buffer at a raw address.</summary>
    /// <param name="address">The guest physical address.</param>
    /// <param name="length">The length in bytes.</param>
    /// <returns>The buffer.</returns>
    public static TestBuffer DeviceWritable(ulong address, uint length) => new(new GuestAddress(address), length, true);
}
