namespace Virtio.Vsock.Device;

/// <summary>
/// The muxer's part of a diagnostic snapshot: lists its connections. Runs on the device loop only;
/// reads, never changes anything.
/// </summary>
internal sealed partial class VsockMuxer
{
    /// <summary>Appends a copy of every connection to <paramref name="into"/>.</summary>
    /// <param name="into">Where the copies go.</param>
    /// <param name="rxStarved">Whether the guest has no RX buffers posted right now.</param>
    public void Describe(List<VsockConnectionInfo> into, bool rxStarved)
    {
        foreach (VsockConnection connection in _connections.Values)
        {
            into.Add(connection.Describe(rxStarved));
        }
    }
}
