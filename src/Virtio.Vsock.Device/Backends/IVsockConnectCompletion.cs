namespace Virtio.Vsock.Device;

/// <summary>
/// How a host connect started with <see cref="IVsockBackendHost.Connect"/> ends: exactly one of the two methods is
/// called, once, on the device's loop thread (or, when the device is disposed before the attempt reached its loop,
/// on the disposing thread). Implementations must not block or throw: they run between the device's other work.
/// </summary>
public interface IVsockConnectCompletion
{
    /// <summary>The guest answered RESPONSE: the endpoint is started and carries the data.</summary>
    /// <param name="localPort">The host-side (source) port of the connection.</param>
    void OnConnected(uint localPort);

    /// <summary>
    /// The connect failed and the endpoint was closed (aborted): a <see cref="VsockConnectException"/> (refused by
    /// the guest, timed out, no resources, not running, reset), an <see cref="OperationCanceledException"/>, or an
    /// <see cref="ObjectDisposedException"/> when the device was disposed first.
    /// </summary>
    /// <param name="error">Why.</param>
    void OnFailed(Exception error);
}
