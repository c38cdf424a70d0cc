namespace Virtio.Vsock.Device;

/// <summary>The outcome of an endpoint read or write.</summary>
public enum EndpointStatus
{
    /// <summary>Bytes moved (<see cref="EndpointResult.Bytes"/> may be 0 for an empty SEQPACKET message).</summary>
    Ok = 0,

    /// <summary>Nothing can move now; ask for readiness.</summary>
    WouldBlock,

    /// <summary>Read: the host peer shut down sending and every byte was read.</summary>
    EndOfStream,

    /// <summary>Read: the host peer closed entirely (will neither send nor receive) and every byte was read.
    /// Write: the host peer no longer receives.</summary>
    Closed,

    /// <summary>The host side failed; the connection is reset.</summary>
    Error,
}
