namespace Virtio.Vsock;

/// <summary>The id of a <c>struct virtio_vsock_event</c> written to the event queue.</summary>
public enum VsockEventId : uint
{
    /// <summary>VIRTIO_VSOCK_EVENT_TRANSPORT_RESET: the driver re-reads its CID and resets established connections.</summary>
    TransportReset = 0,
}
