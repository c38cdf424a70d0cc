namespace Virtio.Vsock.Device;

/// <summary>Identifies a connection: (local cid, local port, peer cid, peer port), local being the host side.</summary>
/// <param name="LocalCid">The host-side CID (2).</param>
/// <param name="LocalPort">The host-side port.</param>
/// <param name="PeerCid">The guest's CID.</param>
/// <param name="PeerPort">The guest-side port.</param>
public readonly record struct ConnectionKey(ulong LocalCid, uint LocalPort, ulong PeerCid, uint PeerPort);
