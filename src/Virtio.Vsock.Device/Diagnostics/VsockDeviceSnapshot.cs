namespace Virtio.Vsock.Device;

/// <summary>
/// A device's connections and queue state at one instant, taken on its loop (<see cref="VsockDevice.SnapshotAsync"/>).
/// Owns copies only; must never be mistaken for live state.
/// </summary>
public sealed record VsockDeviceSnapshot
{
    /// <summary>The guest's CID.</summary>
    public ulong GuestCid { get; init; }

    /// <summary>The connections with host programs.</summary>
    public required IReadOnlyList<VsockConnectionInfo> Connections { get; init; }

    /// <summary>Connections with sibling guests.</summary>
    public int SiblingConnections { get; init; }

    /// <summary>RX buffers the guest posted that the device has not used yet (0 while the queue is not running).</summary>
    public int RxBuffersAvailable { get; init; }

    /// <summary>
    /// TX chains the guest made available that the device has not taken yet (0 while the queue is not running). It
    /// stays above zero only while the device is behind; chains the guest queued without making them available (a
    /// driver that has not published or notified them) are not counted.
    /// </summary>
    public int TxChainsWaiting { get; init; }

    /// <summary>The RX, TX and event queues' indices and notification counts, in queue order.</summary>
    public IReadOnlyList<VsockQueueInfo> Queues { get; init; } = [];

    /// <summary>Bytes from the guest held by the device for host sockets, over all connections.</summary>
    public long BufferedToHost => Connections.Sum(c => (long)c.BufferedToHost);

    /// <summary>Connections waiting for the guest's credit.</summary>
    public int StalledOnCredit => Connections.Count(c => c.Stall == VsockStallReason.PeerCredit);
}
