namespace Vhost.User;

/// <summary>
/// Tells the driver side that a virtqueue has new used buffers (the vhost-user "call"): writes 1 to the
/// call eventfd the frontend gave with <c>SET_VRING_CALL</c>.
/// </summary>
/// <remarks>
/// Thread-safe and allocation-free; safe to call from any thread at any time, also after the queue was
/// stopped or the connection closed (it then does nothing). The frontend may replace the call eventfd
/// while the queue runs (QEMU does when it masks guest notifiers); the same notifier follows the change.
/// </remarks>
public interface IVringNotifier
{
    /// <summary>Signals the call eventfd. Never throws and never blocks.</summary>
    /// <returns>
    /// <see langword="true"/> when the frontend will see a notification (the counter was written, or was
    /// already saturated); <see langword="false"/> when there is no call eventfd or the write failed.
    /// </returns>
    bool Notify();
}
