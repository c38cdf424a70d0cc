namespace Virtio.Vsock.Device;

/// <summary>The life of a connection in the engine.</summary>
internal enum ConnectionState
{
    /// <summary>The guest sent REQUEST; the backend has not accepted yet.</summary>
    Accepting,

    /// <summary>The host asked to connect; REQUEST is (to be) sent and RESPONSE awaited.</summary>
    Connecting,

    /// <summary>Data flows (possibly half-closed one or both ways).</summary>
    Established,

    /// <summary>We sent SHUTDOWN with both flags, or the guest did and buffered data drains; awaiting RST or the timeout.</summary>
    Closing,

    /// <summary>An RST is to be sent; the connection ignores everything else.</summary>
    Resetting,

    /// <summary>Removed from the table.</summary>
    Closed,
}
