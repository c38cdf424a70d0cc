namespace Virtio.Vsock.Device;

/// <summary>
/// One connection as the device loop saw it at one instant (a copy; see <see cref="VsockDevice.SnapshotAsync"/>).
/// Byte counts are the protocol's wrapping 32-bit counters (modulo 2^32), as the credit arithmetic keeps them.
/// Owns copies of values only; must never hold a reference into the device.
/// </summary>
public sealed record VsockConnectionInfo
{
    /// <summary>The socket type.</summary>
    public VsockType Type { get; init; }

    /// <summary>The connection state (<c>Connecting</c>, <c>Accepting</c>, <c>Established</c>, <c>Closing</c>, <c>Resetting</c>, <c>Closed</c>).</summary>
    public required string State { get; init; }

    /// <summary>The host-side port.</summary>
    public uint HostPort { get; init; }

    /// <summary>The guest's CID.</summary>
    public ulong GuestCid { get; init; }

    /// <summary>The guest-side port.</summary>
    public uint GuestPort { get; init; }

    /// <summary>Payload bytes the guest sent on this connection (modulo 2^32).</summary>
    public uint BytesFromGuest { get; init; }

    /// <summary>Payload bytes sent to the guest on this connection (modulo 2^32).</summary>
    public uint BytesToGuest { get; init; }

    /// <summary>Bytes from the guest held by the device, not yet written to the host socket.</summary>
    public uint BufferedToHost { get; init; }

    /// <summary>Our credit: bytes the guest may still send (our <c>buf_alloc</c> less what we hold).</summary>
    public uint OurCredit { get; init; }

    /// <summary>The guest's credit: bytes we may still send it (its <c>buf_alloc</c> less what is in flight).</summary>
    public uint PeerCredit { get; init; }

    /// <summary>The guest's advertised receive buffer (<c>buf_alloc</c>).</summary>
    public uint PeerBufAlloc { get; init; }

    /// <summary>What the connection waits on right now, if anything.</summary>
    public VsockStallReason Stall { get; init; }

    /// <summary>
    /// How long the connection has waited on <see cref="Stall"/>, in milliseconds (0 when not stalled): since the
    /// guest's credit ran out, since the host socket was found full, or since the connection queued for RX buffers.
    /// </summary>
    public long StalledMs { get; init; }
}
