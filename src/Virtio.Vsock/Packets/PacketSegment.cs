namespace Virtio.Vsock;

/// <summary>One validated piece of a packet's header or data buffer in guest memory.</summary>
/// <param name="Address">The guest address of the first byte.</param>
/// <param name="Length">The number of bytes (at least 1).</param>
internal readonly record struct PacketSegment(ulong Address, uint Length);
