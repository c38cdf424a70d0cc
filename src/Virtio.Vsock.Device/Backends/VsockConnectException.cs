namespace Virtio.Vsock.Device;

/// <summary>A host-initiated connection to the guest failed.</summary>
public sealed class VsockConnectException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="reason">Why.</param>
    /// <param name="message">The message.</param>
    public VsockConnectException(VsockConnectFailure reason, string message)
        : base(message)
    {
        Reason = reason;
    }

    /// <summary>Why the connect failed.</summary>
    public VsockConnectFailure Reason { get; }
}
