namespace Virtio.Vsock;

/// <summary>The exception form of a <see cref="VsockPacketError"/>, thrown only by the convenience methods meant for the edges.</summary>
public sealed class VsockPacketException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="error">The error.</param>
    public VsockPacketException(VsockPacketError error)
        : base(error.Describe())
    {
        Error = error;
    }

    /// <summary>The error.</summary>
    public VsockPacketError Error { get; }
}
