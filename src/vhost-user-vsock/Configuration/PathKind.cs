namespace VhostUserVsock.Configuration;

/// <summary>What a path names, symbolic links not followed.</summary>
public enum PathKind
{
    /// <summary>Nothing: the path does not exist.</summary>
    Missing,

    /// <summary>A Unix domain socket.</summary>
    Socket,

    /// <summary>A directory.</summary>
    Directory,

    /// <summary>Anything else: a regular file, a symbolic link, a device, a FIFO.</summary>
    Other,

    /// <summary>The path could not be examined (e.g. permission denied on a parent directory).</summary>
    Unknown,
}
