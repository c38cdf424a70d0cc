namespace Virtio.Queue;

/// <summary>
/// The <c>flags</c> field of a split-virtqueue descriptor (<c>VIRTQ_DESC_F_*</c>).
/// </summary>
/// <remarks>
/// Bits the specification does not define are kept as the driver wrote them and otherwise ignored,
/// so a descriptor read from guest memory round-trips exactly.
/// </remarks>
[Flags]
public enum DescriptorFlags : ushort
{
    /// <summary>No flag: a device-readable buffer that ends its chain.</summary>
    None = 0,

    /// <summary><c>VIRTQ_DESC_F_NEXT</c>: the <c>next</c> field links another descriptor.</summary>
    Next = 1,

    /// <summary><c>VIRTQ_DESC_F_WRITE</c>: the buffer is device-writable (otherwise device-readable).</summary>
    Write = 2,

    /// <summary><c>VIRTQ_DESC_F_INDIRECT</c>: the buffer is a table of further descriptors.</summary>
    Indirect = 4,
}
