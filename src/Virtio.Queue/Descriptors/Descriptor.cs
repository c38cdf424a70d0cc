using System.Globalization;
using System.Runtime.InteropServices;
using Virtio.Memory;

namespace Virtio.Queue;

/// <summary>
/// One split-virtqueue descriptor, <c>{ le64 addr; le32 len; le16 flags; le16 next }</c>, exactly as the
/// driver wrote it.
/// </summary>
/// <remarks>
/// The in-memory layout equals the wire layout on a little-endian host (16 bytes, no padding), so the
/// queue copies a descriptor out of guest memory with a single unaligned load. A value of this type is a
/// snapshot: the guest may change the descriptor afterwards, but checks made on the snapshot stay true
/// for it, so there is no time-of-check/time-of-use gap.
/// </remarks>
[StructLayout(LayoutKind.Sequential, Pack = 1, Size = 16)]
public readonly struct Descriptor : IEquatable<Descriptor>
{
    /// <summary>The size of one descriptor in guest memory, in bytes.</summary>
    public const int SizeInBytes = 16;

    private readonly ulong _address;
    private readonly uint _length;
    private readonly ushort _flags;
    private readonly ushort _next;

    /// <summary>Creates a descriptor.</summary>
    /// <param name="address">The guest physical address of the buffer.</param>
    /// <param name="length">The buffer length in bytes.</param>
    /// <param name="flags">The descriptor flags.</param>
    /// <param name="next">The index of the next descriptor, meaningful with <see cref="DescriptorFlags.Next"/>.</param>
    public Descriptor(GuestAddress address, uint length, DescriptorFlags flags, ushort next)
    {
        _address = address.Value;
        _length = length;
        _flags = (ushort)flags;
        _next = next;
    }

    /// <summary>The guest physical address of the buffer (or of the indirect table).</summary>
    public GuestAddress Address => new(_address);

    /// <summary>The buffer length in bytes (for an indirect descriptor, the table length).</summary>
    public uint Length => _length;

    /// <summary>The flags, including any undefined bits the driver set.</summary>
    public DescriptorFlags Flags => (DescriptorFlags)_flags;

    /// <summary>The index of the next descriptor in the chain; meaningful only when <see cref="HasNext"/>.</summary>
    public ushort Next => _next;

    /// <summary>Whether the buffer is device-writable (<see cref="DescriptorFlags.Write"/>).</summary>
    public bool IsWriteOnly => (_flags & (ushort)DescriptorFlags.Write) != 0;

    /// <summary>Whether another descriptor follows (<see cref="DescriptorFlags.Next"/>).</summary>
    public bool HasNext => (_flags & (ushort)DescriptorFlags.Next) != 0;

    /// <summary>Whether the descriptor points at an indirect descriptor table (<see cref="DescriptorFlags.Indirect"/>).</summary>
    public bool IsIndirect => (_flags & (ushort)DescriptorFlags.Indirect) != 0;

    /// <summary>Compares two descriptors field by field.</summary>
    /// <param name="left">The first descriptor.</param>
    /// <param name="right">The second descriptor.</param>
    /// <returns>Whether all four fields are equal.</returns>
    public static bool operator ==(Descriptor left, Descriptor right) => left.Equals(right);

    /// <summary>Compares two descriptors field by field.</summary>
    /// <param name="left">The first descriptor.</param>
    /// <param name="right">The second descriptor.</param>
    /// <returns>Whether any field differs.</returns>
    public static bool operator !=(Descriptor left, Descriptor right) => !left.Equals(right);

    /// <inheritdoc/>
    public bool Equals(Descriptor other) =>
        _address == other._address && _length == other._length && _flags == other._flags && _next == other._next;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Descriptor other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(_address, _length, _flags, _next);

    /// <summary>The descriptor as <c>{addr, len, flags, next}</c>.</summary>
    /// <returns>The formatted descriptor.</returns>
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture, $"{{{Address}, {_length}, {Flags}, next {_next}}}");
}
