namespace Virtio.Vsock.Device;

/// <summary>A guest-initiated connection waiting for its backend to accept or refuse it.</summary>
public interface IVsockIncomingConnection
{
    /// <summary>The host port the guest connects to.</summary>
    uint LocalPort { get; }

    /// <summary>The guest's CID.</summary>
    ulong PeerCid { get; }

    /// <summary>The guest's source port.</summary>
    uint PeerPort { get; }

    /// <summary>Stream or seqpacket.</summary>
    VsockType Type { get; }

    /// <summary>Accepts: the guest gets RESPONSE and <paramref name="endpoint"/> carries the data. Thread-safe;
    /// the first answer wins. If the connection is gone meanwhile (the guest gave up, timeout, reset) the
    /// endpoint is closed with abort.</summary>
    /// <param name="endpoint">The host side.</param>
    void Accept(IVsockEndpoint endpoint);

    /// <summary>Refuses: the guest gets RST. Thread-safe; the first answer wins.</summary>
    void Refuse();
}
