namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// Why <see cref="HybridVsockListener.TryStart"/> refused to listen. Owns nothing; must never be
/// <see cref="None"/> for a listener that did not start.
/// </summary>
internal enum UnixListenerStartError
{
    /// <summary>Started.</summary>
    None = 0,

    /// <summary>The path is empty, contains NUL, or does not fit in a Unix socket address (107 bytes).</summary>
    InvalidPath = 1,

    /// <summary>A live process listens on the path already (it accepted, or its backlog is full, or it listens with another socket type).</summary>
    AddressInUse = 2,

    /// <summary>Something that is not a socket (a file, a directory) exists at the path; it is never removed.</summary>
    NotASocket = 3,

    /// <summary>Permission denied on the path or its directory.</summary>
    AccessDenied = 4,

    /// <summary>Any other failure (a missing directory, for one).</summary>
    Failed = 5,
}
