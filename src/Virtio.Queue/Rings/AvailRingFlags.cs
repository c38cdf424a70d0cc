namespace Virtio.Queue;

/// <summary>The <c>flags</c> field of the available ring, written by the driver.</summary>
[Flags]
public enum AvailRingFlags : ushort
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary>
    /// <c>VIRTQ_AVAIL_F_NO_INTERRUPT</c>: the driver asks for no used-buffer notifications.
    /// Ignored when VIRTIO_F_EVENT_IDX is negotiated.
    /// </summary>
    NoInterrupt = 1,
}
