namespace Virtio.Vsock.Device;

/// <summary>
/// A host side for vsock connections: where guest-initiated connections go, and who may open connections
/// to the guest. One small interface so the connection engine never knows which backend carries a
/// connection (in-process streams, Unix sockets, ...).
/// </summary>
public interface IVsockBackend
{
    /// <summary>Called once when the device is created, before any other call.</summary>
    /// <param name="host">The device side: opens host-initiated connections.</param>
    void Attach(IVsockBackendHost host);

    /// <summary>
    /// The guest asked to connect to host port <see cref="IVsockIncomingConnection.LocalPort"/>. Called on the
    /// device loop: must not block. Answer later, from any thread, with
    /// <see cref="IVsockIncomingConnection.Accept"/> or <see cref="IVsockIncomingConnection.Refuse"/>; without an
    /// answer within the connect timeout the guest gets RST.
    /// </summary>
    /// <param name="connection">The pending connection.</param>
    void OnGuestConnect(IVsockIncomingConnection connection);

    /// <summary>The device was reset or disposed: pending connect work may be abandoned. Called on the device loop.</summary>
    void OnDeviceReset();
}
