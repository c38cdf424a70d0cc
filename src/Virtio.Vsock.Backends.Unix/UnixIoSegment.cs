namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// One buffer of a scatter/gather socket operation: an address and a length, the shape of an
/// <c>iovec</c>. Used to move a payload between a socket and several guest-memory descriptors in one
/// system call (one copy). Owns nothing: the memory must stay valid and unmoved (native guest memory
/// or a pinned array) for the duration of the call it is passed to, and must never be retained.
/// </summary>
internal readonly struct UnixIoSegment
{
    /// <summary>Creates a segment.</summary>
    /// <param name="address">The first byte (native or pinned memory).</param>
    /// <param name="length">The number of bytes; negative is treated as 0.</param>
    public UnixIoSegment(nint address, int length)
    {
        Address = address;
        Length = Math.Max(length, 0);
    }

    /// <summary>The first byte.</summary>
    public nint Address { get; }

    /// <summary>The number of bytes.</summary>
    public int Length { get; }
}
