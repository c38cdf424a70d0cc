namespace Virtio.Vsock.Device;

/// <summary>
/// Something that other threads wake the device loop for (a connection whose host endpoint became
/// readable or writable, a backend's accept). It keeps its own pending flags and queues itself on the
/// loop at most once until <see cref="OnSignalled"/> runs, so signalling never allocates.
/// </summary>
internal interface ISignalSource
{
    /// <summary>Called on the loop thread: take and handle the pending flags.</summary>
    void OnSignalled();

    /// <summary>Called on the loop thread when <see cref="OnSignalled"/> threw: contain the damage (a connection
    /// resets itself; anything else stops its device). Must not throw.</summary>
    /// <param name="exception">What <see cref="OnSignalled"/> threw.</param>
    void OnFault(Exception exception);
}
