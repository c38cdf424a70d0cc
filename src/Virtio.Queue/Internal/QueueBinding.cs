using Virtio.Memory;

namespace Virtio.Queue;

/// <summary>
/// What a popped <see cref="DescriptorChain"/> needs from its queue, fixed when the queue binds to a
/// <see cref="GuestMemory"/>: the memory, the mapped descriptor table, the region hint and the queue size.
/// </summary>
/// <remarks>
/// One instance per (configuration, memory) pair, created off the hot path; chains share it by reference,
/// which keeps <see cref="DescriptorChain"/> small to copy. A chain popped before a reconfiguration keeps
/// the binding it was popped under, so it stays consistent (and checked) on its own.
/// </remarks>
internal sealed class QueueBinding
{
    public QueueBinding(GuestMemory memory, GuestArea descriptors, RegionHint hint, ushort queueSize)
    {
        Memory = memory;
        Descriptors = descriptors;
        Hint = hint;
        QueueSize = queueSize;
    }

    /// <summary>The guest memory.</summary>
    public GuestMemory Memory { get; }

    /// <summary>The descriptor table.</summary>
    public GuestArea Descriptors { get; }

    /// <summary>The largest region, for cheap buffer checks.</summary>
    public RegionHint Hint { get; }

    /// <summary>The queue size.</summary>
    public ushort QueueSize { get; }
}
