using Virtio.Memory;

namespace Virtio.Queue.Testing;

/// <summary>
/// Where the three parts of a split virtqueue of a given size live in guest memory, with their sizes in
/// bytes: descriptor table (16-aligned, 16 * size), available ring (2-aligned, 6 + 2 * size) and used ring
/// (4-aligned, 6 + 8 * size).
/// </summary>
/// <remarks>
/// Either packed one after the other from a base address (<see cref="At"/>, <see cref="Allocate"/>), as a
/// modern Linux driver allocates them, or at explicit addresses. The constructor checks size, alignments
/// and that no two parts overlap; it does not check guest memory (the device's validation does that).
/// </remarks>
public sealed class QueueLayout
{
    /// <summary>Creates a layout at explicit addresses.</summary>
    /// <param name="size">The queue size: a power of two in 1..32768.</param>
    /// <param name="descriptorTable">The descriptor table address (16-aligned).</param>
    /// <param name="availRing">The available ring address (2-aligned).</param>
    /// <param name="usedRing">The used ring address (4-aligned).</param>
    /// <exception cref="ArgumentException">Bad size, misaligned address, overflow, or overlapping parts.</exception>
    public QueueLayout(ushort size, GuestAddress descriptorTable, GuestAddress availRing, GuestAddress usedRing)
    {
        if (!SplitRing.IsValidSize(size))
        {
            throw new ArgumentException($"Queue size {size} is not a power of two in 1..32768.", nameof(size));
        }

        Require(descriptorTable.IsAligned(SplitRing.DescriptorTableAlignment), "descriptor table", descriptorTable, 16);
        Require(availRing.IsAligned(SplitRing.AvailRingAlignment), "available ring", availRing, 2);
        Require(usedRing.IsAligned(SplitRing.UsedRingAlignment), "used ring", usedRing, 4);
        Size = size;
        DescriptorTable = descriptorTable;
        AvailRing = availRing;
        UsedRing = usedRing;
        DescriptorTableBytes = SplitRing.DescriptorTableBytes(size);
        AvailRingBytes = SplitRing.AvailRingBytes(size);
        UsedRingBytes = SplitRing.UsedRingBytes(size);
        GuestAddress descriptorEnd = descriptorTable.CheckedAdd(DescriptorTableBytes);
        GuestAddress availEnd = availRing.CheckedAdd(AvailRingBytes);
        GuestAddress usedEnd = usedRing.CheckedAdd(UsedRingBytes);
        if (Overlap(descriptorTable, descriptorEnd, availRing, availEnd)
            || Overlap(descriptorTable, descriptorEnd, usedRing, usedEnd)
            || Overlap(availRing, availEnd, usedRing, usedEnd))
        {
            throw new ArgumentException($"Queue parts overlap: {this}.");
        }

        Start = new GuestAddress(Math.Min(descriptorTable.Value, Math.Min(availRing.Value, usedRing.Value)));
        End = new GuestAddress(Math.Max(descriptorEnd.Value, Math.Max(availEnd.Value, usedEnd.Value)));
    }

    /// <summary>The queue size.</summary>
    public ushort Size { get; }

    /// <summary>The descriptor table address.</summary>
    public GuestAddress DescriptorTable { get; }

    /// <summary>The available ring address.</summary>
    public GuestAddress AvailRing { get; }

    /// <summary>The used ring address.</summary>
    public GuestAddress UsedRing { get; }

    /// <summary>The descriptor table size in bytes.</summary>
    public uint DescriptorTableBytes { get; }

    /// <summary>The available ring size in bytes, <c>used_event</c> included.</summary>
    public uint AvailRingBytes { get; }

    /// <summary>The used ring size in bytes, <c>avail_event</c> included.</summary>
    public uint UsedRingBytes { get; }

    /// <summary>The lowest address of the three parts.</summary>
    public GuestAddress Start { get; }

    /// <summary>The first address after the highest part.</summary>
    public GuestAddress End { get; }

    /// <summary>The address of <c>used_event</c> (end of the available ring).</summary>
    public GuestAddress UsedEventAddress => AvailRing.CheckedAdd(SplitRing.UsedEventOffset(Size));

    /// <summary>The address of <c>avail_event</c> (end of the used ring).</summary>
    public GuestAddress AvailEventAddress => UsedRing.CheckedAdd(SplitRing.AvailEventOffset(Size));

    /// <summary>Packs the three parts from <paramref name="baseAddress"/> (rounded up to 16): table, available ring, used ring.</summary>
    /// <param name="baseAddress">Where to start.</param>
    /// <param name="size">The queue size.</param>
    /// <returns>The layout.</returns>
    public static QueueLayout At(GuestAddress baseAddress, ushort size)
    {
        GuestAddress descriptors = AlignUp(baseAddress, SplitRing.DescriptorTableAlignment);
        GuestAddress avail = descriptors.CheckedAdd(SplitRing.DescriptorTableBytes(size));
        GuestAddress used = AlignUp(avail.CheckedAdd(SplitRing.AvailRingBytes(size)), SplitRing.UsedRingAlignment);
        return new QueueLayout(size, descriptors, avail, used);
    }

    /// <summary>Allocates the three parts, packed, from <paramref name="allocator"/>.</summary>
    /// <param name="allocator">The allocator.</param>
    /// <param name="size">The queue size.</param>
    /// <returns>The layout.</returns>
    public static QueueLayout Allocate(GuestAllocator allocator, ushort size)
    {
        ArgumentNullException.ThrowIfNull(allocator);
        QueueLayout probe = At(new GuestAddress(0), size);
        GuestAddress start = allocator.Allocate(probe.End.Value, SplitRing.DescriptorTableAlignment);
        return At(start, size);
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"size {Size}: desc {DescriptorTable}+0x{DescriptorTableBytes:x}, avail {AvailRing}+0x{AvailRingBytes:x}, used {UsedRing}+0x{UsedRingBytes:x}";

    private static GuestAddress AlignUp(GuestAddress address, uint alignment) =>
        new(address.CheckedAdd(alignment - 1).Value & ~(ulong)(alignment - 1));

    private static bool Overlap(GuestAddress aStart, GuestAddress aEnd, GuestAddress bStart, GuestAddress bEnd) =>
        aStart < bEnd && bStart < aEnd;

    private static void Require(bool condition, string part, GuestAddress address, int alignment)
    {
        if (!condition)
        {
            throw new ArgumentException($"The {part} at {address} is not {alignment}-byte aligned.");
        }
    }
}
