namespace VhostUserVsock.Configuration;

/// <summary>
/// The file-system questions validation asks about socket paths; <see cref="UnixFileSystemProbe"/>
/// answers them for real, tests may answer them otherwise.
/// </summary>
public interface IFileSystemProbe
{
    /// <summary>What <paramref name="path"/> names, symbolic links not followed.</summary>
    /// <param name="path">An absolute path.</param>
    /// <returns>The kind of file, or <see cref="PathKind.Missing"/>.</returns>
    PathKind GetKind(string path);

    /// <summary>Whether the current process may create entries in directory <paramref name="path"/>.</summary>
    /// <param name="path">An existing directory.</param>
    /// <returns><see langword="true"/> when writable and searchable.</returns>
    bool IsWritableDirectory(string path);

    /// <summary>Whether a process is accepting connections on the Unix socket at <paramref name="path"/> (so it is not a stale leftover).</summary>
    /// <param name="path">An existing socket.</param>
    /// <returns><see langword="true"/> when a connection attempt is not refused.</returns>
    bool IsListening(string path);
}
