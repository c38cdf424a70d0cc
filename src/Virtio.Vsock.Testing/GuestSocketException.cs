namespace Virtio.Vsock.Testing;

/// <summary>A simulated guest socket operation failed (refused, reset, timed out, closed).</summary>
public sealed class GuestSocketException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What happened.</param>
    public GuestSocketException(string message)
        : base(message)
    {
    }
}
