namespace Virtio.Vsock.Device.Siblings;

/// <summary>Identifies a connection between the local guest and a sibling guest, from the local side.</summary>
/// <param name="LocalPort">The local guest's port.</param>
/// <param name="PeerCid">The sibling guest's CID.</param>
/// <param name="PeerPort">The sibling guest's port.</param>
internal readonly record struct SiblingFlowKey(uint LocalPort, ulong PeerCid, uint PeerPort);
