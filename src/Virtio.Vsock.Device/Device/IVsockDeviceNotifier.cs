namespace Virtio.Vsock.Device;

/// <summary>
/// How the device tells its transport to interrupt the driver. Implemented by the transport (vhost-user
/// call eventfd, an in-process VMM's interrupt line, the guest simulator).
/// </summary>
public interface IVsockDeviceNotifier
{
    /// <summary>Notify the driver that queue <paramref name="queueIndex"/> has new used buffers. Called on the
    /// device's loop thread; must not block.</summary>
    /// <param name="queueIndex">0 = RX, 1 = TX, 2 = event.</param>
    void NotifyQueue(int queueIndex);
}
