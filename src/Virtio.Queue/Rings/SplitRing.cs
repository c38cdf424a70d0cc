namespace Virtio.Queue;

/// <summary>
/// The byte layout of the three parts of a split virtqueue: sizes, alignments and field offsets, all
/// computed from the queue size. Shared by the device (<see cref="VirtQueue"/>) and by test drivers.
/// </summary>
/// <remarks>
/// The available and used rings are always sized with their trailing event field
/// (<c>used_event</c> / <c>avail_event</c>), as the specification lays them out, whether or not
/// VIRTIO_F_EVENT_IDX is negotiated.
/// </remarks>
public static class SplitRing
{
    /// <summary>The largest queue size of a split virtqueue.</summary>
    public const int MaxQueueSize = 32768;

    /// <summary>Required alignment of the descriptor table, in bytes.</summary>
    public const uint DescriptorTableAlignment = 16;

    /// <summary>Required alignment of the available ring, in bytes.</summary>
    public const uint AvailRingAlignment = 2;

    /// <summary>Required alignment of the used ring, in bytes.</summary>
    public const uint UsedRingAlignment = 4;

    /// <summary>Offset of <c>flags</c> in both rings.</summary>
    public const uint FlagsOffset = 0;

    /// <summary>Offset of <c>idx</c> in both rings.</summary>
    public const uint IndexOffset = 2;

    /// <summary>Offset of <c>ring[0]</c> in both rings.</summary>
    public const uint RingOffset = 4;

    /// <summary>Size of one available ring entry (a le16 head index).</summary>
    public const uint AvailEntrySize = 2;

    /// <summary>Size of one used ring element (<c>le32 id; le32 len</c>).</summary>
    public const uint UsedElementSize = 8;

    /// <summary>Size in bytes of the descriptor table: 16 * size.</summary>
    /// <param name="queueSize">The queue size.</param>
    /// <returns>The size in bytes.</returns>
    public static uint DescriptorTableBytes(uint queueSize) => (uint)Descriptor.SizeInBytes * queueSize;

    /// <summary>Size in bytes of the available ring: 6 + 2 * size.</summary>
    /// <param name="queueSize">The queue size.</param>
    /// <returns>The size in bytes.</returns>
    public static uint AvailRingBytes(uint queueSize) => 6 + (AvailEntrySize * queueSize);

    /// <summary>Size in bytes of the used ring: 6 + 8 * size.</summary>
    /// <param name="queueSize">The queue size.</param>
    /// <returns>The size in bytes.</returns>
    public static uint UsedRingBytes(uint queueSize) => 6 + (UsedElementSize * queueSize);

    /// <summary>Offset of <c>used_event</c> in the available ring.</summary>
    /// <param name="queueSize">The queue size.</param>
    /// <returns>The offset in bytes.</returns>
    public static uint UsedEventOffset(uint queueSize) => RingOffset + (AvailEntrySize * queueSize);

    /// <summary>Offset of <c>avail_event</c> in the used ring.</summary>
    /// <param name="queueSize">The queue size.</param>
    /// <returns>The offset in bytes.</returns>
    public static uint AvailEventOffset(uint queueSize) => RingOffset + (UsedElementSize * queueSize);

    /// <summary>Whether <paramref name="queueSize"/> is a valid split-queue size: a power of two in 1..32768.</summary>
    /// <param name="queueSize">The queue size.</param>
    /// <returns><see langword="true"/> when valid.</returns>
    public static bool IsValidSize(uint queueSize) =>
        queueSize is > 0 and <= MaxQueueSize && (queueSize & (queueSize - 1)) == 0;
}
