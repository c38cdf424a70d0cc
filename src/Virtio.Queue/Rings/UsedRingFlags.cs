namespace Virtio.Queue;

/// <summary>The <c>flags</c> field of the used ring, written by the device.</summary>
[Flags]
public enum UsedRingFlags : ushort
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary>
    /// <c>VIRTQ_USED_F_NO_NOTIFY</c>: the device asks for no available-buffer notifications.
    /// Ignored by the driver when VIRTIO_F_EVENT_IDX is negotiated.
    /// </summary>
    NoNotify = 1,
}
