namespace Virtio.Vsock.Device;

/// <summary>
/// Why a connection's data is not moving right now, as a <see cref="VsockDevice.SnapshotAsync"/> sees it.
/// Owns nothing; a description only, never used to decide anything on the device loop.
/// </summary>
public enum VsockStallReason
{
    /// <summary>Nothing is waiting (or the connection is not established).</summary>
    None,

    /// <summary>The host has data for the guest but the guest's advertised credit is used up (a CREDIT_REQUEST is out).</summary>
    PeerCredit,

    /// <summary>The connection has packets for the guest but the guest posted no RX buffers.</summary>
    RxBuffers,

    /// <summary>Bytes from the guest wait for the host socket to become writable (the host program does not read).</summary>
    HostSocket,
}
