using Virtio.Memory;

namespace Vhost.User;

/// <summary>
/// Where a split virtqueue lives and where processing resumes, as handed to
/// <see cref="IVhostUserBackend.StartQueue"/>. Addresses are guest physical addresses: the protocol layer
/// has translated the frontend's virtual addresses through the memory table, checked the alignment the
/// virtio specification requires, and checked that every ring lies inside guest memory at start time.
/// </summary>
/// <param name="Size">The number of descriptors: a power of two, at most <see cref="IVhostUserBackend.MaxQueueSize"/>.</param>
/// <param name="DescriptorTable">The descriptor table (16-byte aligned, <c>16 * Size</c> bytes).</param>
/// <param name="AvailableRing">The driver (available) ring (2-byte aligned, <c>6 + 2 * Size</c> bytes).</param>
/// <param name="UsedRing">The device (used) ring (4-byte aligned, <c>6 + 8 * Size</c> bytes).</param>
/// <param name="NextAvailableIndex">
/// The free-running index of the next available-ring entry to process (<c>SET_VRING_BASE</c>; 0 for a fresh
/// queue). The used index is not part of the state: read it from the used ring, where the driver left it.
/// </param>
public readonly record struct VringConfig(
    ushort Size,
    GuestAddress DescriptorTable,
    GuestAddress AvailableRing,
    GuestAddress UsedRing,
    ushort NextAvailableIndex);
