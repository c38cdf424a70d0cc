namespace Virtio.Vsock.Device;

/// <summary>
/// The counters of a socket-based host backend that <see cref="VsockMeter"/> publishes next to the device's own
/// (the Unix backend maps its counters to these): connections through the backend by who initiated them and how
/// they ended, attempts the access rules refused, handshakes that failed, and the sockets it holds now.
/// </summary>
/// <param name="HostConnects">Host-initiated connections the guest accepted.</param>
/// <param name="HostConnectsFailed">Host-initiated connections that failed (refused, timed out, reset).</param>
/// <param name="GuestConnects">Guest-initiated connections a host program accepted.</param>
/// <param name="GuestConnectsRefused">Guest-initiated connections no host program accepted.</param>
/// <param name="HostConnectsDenied">Host-initiated attempts the access rules refused.</param>
/// <param name="GuestConnectsDenied">Guest-initiated attempts the access rules refused.</param>
/// <param name="StreamHandshakeFailures">Stream host connections closed before their CONNECT line was handled.</param>
/// <param name="SeqPacketHandshakeFailures">SEQPACKET host connections closed before their CONNECT line was handled.</param>
/// <param name="OpenSockets">Host sockets the backend holds now.</param>
public readonly record struct HostBackendCounters(
    long HostConnects,
    long HostConnectsFailed,
    long GuestConnects,
    long GuestConnectsRefused,
    long HostConnectsDenied,
    long GuestConnectsDenied,
    long StreamHandshakeFailures,
    long SeqPacketHandshakeFailures,
    long OpenSockets);
