namespace Virtio.Vsock.Device.Siblings;

/// <summary>The life of a connection between two guests, as one of their devices tracks it.</summary>
internal enum SiblingFlowState
{
    /// <summary>REQUEST went one way; RESPONSE has not come back.</summary>
    Requested,

    /// <summary>RESPONSE passed: data, credit and shutdown packets may flow until an RST.</summary>
    Established,

    /// <summary>Removed from the table (an RST passed, or the device reset it).</summary>
    Closed,
}
