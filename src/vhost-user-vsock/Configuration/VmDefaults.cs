namespace VhostUserVsock.Configuration;

/// <summary>
/// The values a VM gets for what its configuration leaves out: the same defaults as rust-vmm's
/// vhost-device-vsock (guest CID 3, a 64 KiB tx buffer, a queue size of 1024, the group
/// <c>default</c>).
/// </summary>
public static class VmDefaults
{
    /// <summary>The guest CID when none is given (rust-vmm's <c>DEFAULT_GUEST_CID</c>).</summary>
    public const ulong GuestCid = 3;

    /// <summary>The per-connection tx buffer size in bytes when none is given (rust-vmm's <c>DEFAULT_TX_BUFFER_SIZE</c>, 64 KiB).</summary>
    public const uint TxBufferSize = 64 * 1024;

    /// <summary>The largest vring size the device accepts when none is given (rust-vmm's <c>DEFAULT_QUEUE_SIZE</c>).</summary>
    public const uint QueueSize = 1024;

    /// <summary>The group a VM belongs to when none is given; every VM left at the default can reach every other.</summary>
    public const string GroupName = "default";
}
