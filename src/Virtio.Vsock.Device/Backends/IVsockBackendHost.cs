namespace Virtio.Vsock.Device;

/// <summary>What a device offers its backend: connecting to a port in the guest.</summary>
public interface IVsockBackendHost
{
    /// <summary>The guest's CID.</summary>
    ulong GuestCid { get; }

    /// <summary>
    /// The device's loop as a poller for host descriptors: a backend that carries connections over sockets watches
    /// them here, so their readiness is handled by the thread that runs the device (no thread of its own).
    /// </summary>
    IVsockFdPoller FdPoller { get; }

    /// <summary>
    /// Opens a connection from the host to <paramref name="guestPort"/> in the guest: sends REQUEST and completes
    /// when the guest answers RESPONSE, after which <paramref name="endpoint"/> is started and carries the data.
    /// </summary>
    /// <param name="guestPort">The guest port.</param>
    /// <param name="type">Stream or seqpacket.</param>
    /// <param name="endpoint">The host side of the new connection; closed (aborted) when the connect fails.</param>
    /// <param name="cancellationToken">Cancels the attempt (the guest gets RST).</param>
    /// <returns>The host-side (source) port of the connection.</returns>
    /// <exception cref="VsockConnectException">Refused by the guest (RST), timed out, no resources, or the device is not running.</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    Task<uint> ConnectAsync(uint guestPort, VsockType type, IVsockEndpoint endpoint, CancellationToken cancellationToken);
}
