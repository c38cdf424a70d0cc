using Virtio.Memory;

namespace Virtio.Vsock.Device;

/// <summary>Where a split virtqueue lives and where to resume it (vhost-user SET_VRING_NUM / ADDR / BASE).</summary>
/// <param name="Size">The queue size: a power of two, 1..32768.</param>
/// <param name="DescriptorTable">Guest address of the descriptor table.</param>
/// <param name="AvailRing">Guest address of the available ring.</param>
/// <param name="UsedRing">Guest address of the used ring.</param>
/// <param name="NextAvail">The next available index to read (0 for a fresh queue).</param>
/// <param name="NextUsed">The next used index to write; null means the same as <paramref name="NextAvail"/>.</param>
public readonly record struct VsockQueueConfig(
    ushort Size,
    GuestAddress DescriptorTable,
    GuestAddress AvailRing,
    GuestAddress UsedRing,
    ushort NextAvail = 0,
    ushort? NextUsed = null);
