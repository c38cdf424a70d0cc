namespace Virtio.Vsock.Device;

/// <summary>Readiness callbacks an endpoint gives the device. Thread-safe, non-blocking, allocation-free.</summary>
public interface IVsockEndpointEvents
{
    /// <summary>The endpoint may now have data, EOF or an error to read.</summary>
    void Readable();

    /// <summary>The endpoint may now take bytes (or report an error).</summary>
    void Writable();
}
