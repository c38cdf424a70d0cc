namespace VhostUserVsock.Configuration;

/// <summary>
/// The values a VM gets for what its configuration leaves out: rust-vmm's vhost-device-vsock
/// defaults (guest CID 3, a queue size of 1024, the group <c>default</c>) except the tx buffer,
/// which is Linux's own default socket buffer (256 KiB) rather than rust-vmm's 64 KiB.
/// </summary>
public static class VmDefaults
{
    /// <summary>The guest CID when none is given (rust-vmm's <c>DEFAULT_GUEST_CID</c>).</summary>
    public const ulong GuestCid = 3;

    /// <summary>
    /// The per-connection tx buffer size in bytes when none is given: 256 KiB, the <c>buf_alloc</c> Linux itself
    /// advertises (<c>VIRTIO_VSOCK_DEFAULT_BUF_SIZE</c>). rust-vmm's 64 KiB lets a guest have one 64 KiB packet in
    /// flight and then wait a whole credit round trip; 256 KiB keeps four in flight. Memory is committed only as
    /// bytes wait for a slow host reader (the buffer grows with its content) and the device's buffered-bytes
    /// budget caps the total.
    /// </summary>
    public const uint TxBufferSize = 256 * 1024;

    /// <summary>The largest vring size the device accepts when none is given (rust-vmm's <c>DEFAULT_QUEUE_SIZE</c>).</summary>
    public const uint QueueSize = 1024;

    /// <summary>The group a VM belongs to when none is given; every VM left at the default can reach every other.</summary>
    public const string GroupName = "default";
}
