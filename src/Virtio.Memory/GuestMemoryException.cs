namespace Virtio.Memory;

/// <summary>The exception form of a <see cref="MemoryError"/>, for code at the edges.</summary>
public sealed class GuestMemoryException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="error">The error.</param>
    /// <param name="address">The address that was accessed.</param>
    public GuestMemoryException(MemoryError error, GuestAddress address)
        : base($"Guest memory access at {address} failed: {error.Describe()}.")
    {
        Error = error;
        Address = address;
    }

    /// <summary>The error.</summary>
    public MemoryError Error { get; }

    /// <summary>The address that was accessed.</summary>
    public GuestAddress Address { get; }
}
