using System.Buffers.Binary;

namespace Vhost.User;

/// <summary>One <c>VhostUserMemoryRegion</c> as sent by the frontend (32 bytes, native little-endian).</summary>
internal readonly record struct RegionDescriptor(ulong GuestAddress, ulong Size, ulong UserAddress, ulong MmapOffset)
{
    /// <summary>The encoded size.</summary>
    internal const int EncodedSize = 32;

    /// <summary>Decodes a region from exactly <see cref="EncodedSize"/> bytes.</summary>
    internal static RegionDescriptor Read(ReadOnlySpan<byte> source) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(source),
        BinaryPrimitives.ReadUInt64LittleEndian(source[8..]),
        BinaryPrimitives.ReadUInt64LittleEndian(source[16..]),
        BinaryPrimitives.ReadUInt64LittleEndian(source[24..]));

    /// <inheritdoc/>
    public override string ToString() =>
        $"{{gpa 0x{GuestAddress:x}, size 0x{Size:x}, user 0x{UserAddress:x}, mmap offset 0x{MmapOffset:x}}}";
}
