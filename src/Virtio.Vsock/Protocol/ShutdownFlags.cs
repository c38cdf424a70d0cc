namespace Virtio.Vsock;

/// <summary>The flags of a <see cref="VsockOp.Shutdown"/> packet. Once a peer set a flag it stays set.</summary>
[Flags]
public enum ShutdownFlags : uint
{
    /// <summary>No direction.</summary>
    None = 0,

    /// <summary>The sender will receive no more data (VIRTIO_VSOCK_SHUTDOWN_RCV).</summary>
    Receive = 1,

    /// <summary>The sender will send no more data (VIRTIO_VSOCK_SHUTDOWN_SEND).</summary>
    Send = 2,

    /// <summary>Both directions: a full close, answered by <see cref="VsockOp.Rst"/>.</summary>
    Both = Receive | Send,
}
