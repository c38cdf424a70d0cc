namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// Readiness of a host socket, as reported by <see cref="UnixReadinessPoller"/>. Owns nothing; a
/// hint, never a promise: the next non-blocking call may still return WouldBlock.
/// </summary>
[Flags]
internal enum UnixReadiness
{
    /// <summary>Nothing.</summary>
    None = 0,

    /// <summary>Data, a message, end of stream, a reset or another error is pending: a receive will not block.</summary>
    Readable = 1,

    /// <summary>A send may take bytes now, or the socket failed (the send will say so).</summary>
    Writable = 2,
}
