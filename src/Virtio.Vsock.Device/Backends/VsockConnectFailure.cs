namespace Virtio.Vsock.Device;

/// <summary>Why a connection attempt failed.</summary>
public enum VsockConnectFailure
{
    /// <summary>The peer answered RST (nobody listens).</summary>
    Refused,

    /// <summary>No answer within the connect timeout.</summary>
    TimedOut,

    /// <summary>The connection limit was reached or no port was free.</summary>
    NoResources,

    /// <summary>The device is not running (queues stopped, reset, disposed) or the type is not negotiated.</summary>
    NotRunning,

    /// <summary>The connection was reset while connecting (transport reset, device reset).</summary>
    Reset,
}
