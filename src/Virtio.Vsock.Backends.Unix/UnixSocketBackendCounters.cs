namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// A snapshot of a <see cref="UnixSocketBackend"/>'s counters. Owns copies of the values; must never
/// be taken as consistent across fields (each is read atomically on its own).
/// </summary>
public readonly record struct UnixSocketBackendCounters
{
    /// <summary>Host-initiated connections the guest accepted and that got their <c>OK</c> reply.</summary>
    public long HostConnects { get; init; }

    /// <summary>Host-initiated connections closed without <c>OK</c> after a good <c>CONNECT</c> line
    /// (the guest refused or did not answer, the device was not running, the host went away, ...).</summary>
    public long HostConnectsFailed { get; init; }

    /// <summary>Guest-initiated connections connected to <c>&lt;uds_path&gt;_&lt;port&gt;</c> and accepted.</summary>
    public long GuestConnects { get; init; }

    /// <summary>Guest-initiated connections refused (no socket file, nobody listening, backlog full until the timeout, ...).</summary>
    public long GuestConnectsRefused { get; init; }

    /// <summary>Host sockets the backend holds right now: connections, and host connections waiting for the guest's answer (sockets of handshakes still reading their line are counted by the listeners).</summary>
    public int OpenSockets { get; init; }

    /// <summary>Host connections waiting for the guest's answer right now.</summary>
    public int PendingHostConnects { get; init; }

    /// <summary>The stream listener's counters (handshake failures and so on); default before <see cref="UnixSocketBackend.Start"/>.</summary>
    public HybridVsockListenerCounters StreamListener { get; init; }

    /// <summary>The SEQPACKET listener's counters; default when it is off or not started.</summary>
    public HybridVsockListenerCounters SeqPacketListener { get; init; }

    /// <summary>Guest connections to host ports refused by the access rules (also in <see cref="GuestConnectsRefused"/>).</summary>
    public long GuestConnectsDenied { get; init; }

    /// <summary>Host connections to guest ports refused by the access rules (also in <see cref="HostConnectsFailed"/>).</summary>
    public long HostConnectsDenied { get; init; }

    /// <summary>These counters as <see cref="VsockMeter"/> publishes them.</summary>
    /// <returns>The meter's view.</returns>
    public HostBackendCounters ForMeter() => new(
        HostConnects, HostConnectsFailed, GuestConnects, GuestConnectsRefused, HostConnectsDenied, GuestConnectsDenied,
        StreamListener.Failed, SeqPacketListener.Failed, OpenSockets);
}
