using VhostUserVsock.Configuration;

namespace VhostUserVsock.Cli;

/// <summary>Removes socket files, and only socket files: a path that turned into anything else is left alone.</summary>
public static class SocketFiles
{
    /// <summary>Removes <paramref name="path"/> if it is a Unix socket.</summary>
    /// <param name="path">The socket path.</param>
    /// <param name="probe">How to examine the file system.</param>
    /// <returns><see langword="true"/> when a socket was removed; <see langword="false"/> when there was none.</returns>
    /// <exception cref="IOException">The socket exists but cannot be removed.</exception>
    /// <exception cref="UnauthorizedAccessException">The socket exists but may not be removed.</exception>
    public static bool RemoveIfSocket(string path, IFileSystemProbe probe)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(probe);
        // The probe decides (an activated path answers as not ours to remove); UnixSocketPath checks again at
        // removal time that a socket is still what the path names.
        return probe.GetKind(path) == PathKind.Socket && UnixSocketPath.RemoveIfSocket(path);
    }
}
