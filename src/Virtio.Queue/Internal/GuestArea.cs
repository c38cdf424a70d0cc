using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Virtio.Memory;

namespace Virtio.Queue;

/// <summary>
/// A range of guest memory that was checked once (a ring, a descriptor table, an indirect table), with
/// the host pointer behind it cached when the range lies in one region.
/// </summary>
/// <remarks>
/// <para>Checking a range and translating its address costs a region lookup; the queue touches its rings
/// several times per chain, so it maps each ring once (per <see cref="GuestMemory"/> instance and queue
/// configuration) and then accesses it at offsets the caller keeps inside <see cref="Length"/>.</para>
/// <para>When the range crosses a region boundary (legal, if rare), or its host address is not aligned for
/// atomic index accesses, no pointer is cached and every access goes through <see cref="GuestMemory"/>'s
/// checked accessors instead: slower, equally safe.</para>
/// <para>The cached pointer is valid as long as the memory is not disposed. Users check
/// <see cref="GuestMemory.IsDisposed"/> before each batch of accesses, which gives the same guarantee as
/// <see cref="GuestMemory"/> itself: safe on the thread that owns a reference or a lease.</para>
/// </remarks>
[StructLayout(LayoutKind.Auto)]
internal readonly unsafe struct GuestArea
{
    private readonly byte* _host;

    private GuestArea(GuestAddress address, uint length, byte* host)
    {
        Address = address;
        Length = length;
        _host = host;
    }

    /// <summary>The first guest address of the area.</summary>
    public GuestAddress Address { get; }

    /// <summary>The length of the area in bytes.</summary>
    public uint Length { get; }

    /// <summary>Checks <c>[address, address + length)</c> and caches its host pointer when possible.</summary>
    /// <param name="memory">The guest memory.</param>
    /// <param name="address">The first byte.</param>
    /// <param name="length">The length in bytes (may be 0).</param>
    /// <param name="hostAlignment">The alignment the host pointer needs for the direct path.</param>
    /// <param name="area">The mapped area.</param>
    /// <returns>The memory error, or <see cref="MemoryError.None"/>.</returns>
    public static MemoryError Map(GuestMemory memory, GuestAddress address, uint length, uint hostAlignment, out GuestArea area)
    {
        area = default;
        MemoryError error = memory.TryGetSpan(address, (int)Math.Min(length, int.MaxValue), out Span<byte> span);
        byte* host = null;
        if (error == MemoryError.None)
        {
            host = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(span));
            if (((nuint)host & (hostAlignment - 1)) != 0)
            {
                host = null;
            }
        }
        else if (error == MemoryError.CrossesRegions)
        {
            error = MemoryError.None;
        }
        else
        {
            return error;
        }

        area = new GuestArea(address, length, host);
        return MemoryError.None;
    }

    /// <summary>Acquire-load of a u16 (ring index) at <paramref name="offset"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public MemoryError LoadU16Acquire(GuestMemory memory, uint offset, out ushort value)
    {
        if (_host != null)
        {
            value = LittleEndian(Volatile.Read(ref *(ushort*)(_host + offset)));
            return MemoryError.None;
        }

        return memory.LoadU16Acquire(new GuestAddress(Address.Value + offset), out value);
    }

    /// <summary>Release-store of a u16 (ring index) at <paramref name="offset"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public MemoryError StoreU16Release(GuestMemory memory, uint offset, ushort value)
    {
        if (_host != null)
        {
            Volatile.Write(ref *(ushort*)(_host + offset), LittleEndian(value));
            return MemoryError.None;
        }

        return memory.StoreU16Release(new GuestAddress(Address.Value + offset), value);
    }

    /// <summary>Plain load of a u16 at <paramref name="offset"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public MemoryError ReadU16(GuestMemory memory, uint offset, out ushort value)
    {
        if (_host != null)
        {
            value = LittleEndian(Unsafe.ReadUnaligned<ushort>(_host + offset));
            return MemoryError.None;
        }

        return memory.ReadU16(new GuestAddress(Address.Value + offset), out value);
    }

    /// <summary>Plain store of a used ring element <c>{ le32 id; le32 len }</c> at <paramref name="offset"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public MemoryError WriteUsedElement(GuestMemory memory, uint offset, uint id, uint length)
    {
        ulong packed = id | ((ulong)length << 32);
        if (_host != null)
        {
            Unsafe.WriteUnaligned(_host + offset, LittleEndian(packed));
            return MemoryError.None;
        }

        return memory.WriteU64(new GuestAddress(Address.Value + offset), packed);
    }

    /// <summary>Reads the descriptor at <paramref name="offset"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public MemoryError ReadDescriptor(GuestMemory memory, uint offset, out Descriptor descriptor)
    {
        if (_host != null && BitConverter.IsLittleEndian)
        {
            descriptor = Unsafe.ReadUnaligned<Descriptor>(_host + offset);
            return MemoryError.None;
        }

        return ReadDescriptorSlow(memory, offset, out descriptor);
    }

    private MemoryError ReadDescriptorSlow(GuestMemory memory, uint offset, out Descriptor descriptor)
    {
        Span<byte> raw = stackalloc byte[Descriptor.SizeInBytes];
        MemoryError error = _host != null
            ? CopyFromHost(offset, raw)
            : memory.Read(new GuestAddress(Address.Value + offset), raw);
        descriptor = error == MemoryError.None
            ? new Descriptor(
                new GuestAddress(BinaryPrimitives.ReadUInt64LittleEndian(raw)),
                BinaryPrimitives.ReadUInt32LittleEndian(raw[8..]),
                (DescriptorFlags)BinaryPrimitives.ReadUInt16LittleEndian(raw[12..]),
                BinaryPrimitives.ReadUInt16LittleEndian(raw[14..]))
            : default;
        return error;
    }

    private MemoryError CopyFromHost(uint offset, Span<byte> destination)
    {
        new ReadOnlySpan<byte>(_host + offset, destination.Length).CopyTo(destination);
        return MemoryError.None;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ushort LittleEndian(ushort value) =>
        BitConverter.IsLittleEndian ? value : BinaryPrimitives.ReverseEndianness(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong LittleEndian(ulong value) =>
        BitConverter.IsLittleEndian ? value : BinaryPrimitives.ReverseEndianness(value);
}
