namespace Virtio.Vsock.Testing;

/// <summary>The state of a simulated guest socket.</summary>
public enum GuestSocketState
{
    /// <summary>REQUEST sent, RESPONSE awaited.</summary>
    Connecting,

    /// <summary>Connected (possibly half-closed).</summary>
    Connected,

    /// <summary>SHUTDOWN with both flags sent, RST awaited.</summary>
    Closing,

    /// <summary>Over: closed orderly or reset.</summary>
    Closed,
}
