namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// The outcome of a guest-initiated connect to a host Unix socket (<see cref="UnixPortConnector"/>).
/// Owns nothing; every value but <see cref="Connected"/> means "reply RST to the guest", and must
/// never be produced by letting an exception escape.
/// </summary>
internal enum UnixConnectStatus
{
    /// <summary>Connected; <see cref="UnixConnectResult.Socket"/> holds the socket.</summary>
    Connected = 0,

    /// <summary>No socket file at the path (ENOENT): nothing listens on that host port.</summary>
    NotFound = 1,

    /// <summary>
    /// The path exists but nobody listens (ECONNREFUSED): a stale socket file, or not a socket.
    /// </summary>
    Refused = 2,

    /// <summary>A listener of the other socket type is there (EPROTOTYPE): e.g. a stream listener for a seqpacket connect.</summary>
    WrongType = 3,

    /// <summary>The listener's backlog is full (EAGAIN) right now; only from a single attempt.</summary>
    Busy = 4,

    /// <summary>The listener's backlog stayed full until the connect timeout.</summary>
    TimedOut = 5,

    /// <summary>The caller's token canceled the connect.</summary>
    Canceled = 6,

    /// <summary>Permission denied on the path (EACCES).</summary>
    AccessDenied = 7,

    /// <summary>Any other failure; <see cref="UnixConnectResult.Errno"/> names it.</summary>
    Failed = 8,
}
