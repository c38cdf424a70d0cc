
namespace VhostUserVsock.Configuration;

/// <summary>
/// Answers <see cref="IFileSystemProbe"/> questions with Linux system calls: statx and the connect probe through
/// <see cref="UnixSocketPath"/> (the stack's one owner of socket-file rules), access for directories. Never changes
/// the file system.
/// </summary>
public sealed class UnixFileSystemProbe : IFileSystemProbe
{
    /// <summary>The shared instance.</summary>
    public static UnixFileSystemProbe Instance { get; } = new();

    /// <inheritdoc/>
    public PathKind GetKind(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return UnixSocketPath.GetKind(path, out _) switch
        {
            UnixSocketPath.Kind.Missing => PathKind.Missing,
            UnixSocketPath.Kind.Socket => PathKind.Socket,
            UnixSocketPath.Kind.Directory => PathKind.Directory,
            UnixSocketPath.Kind.Other => PathKind.Other,
            _ => PathKind.Unknown,
        };
    }

    /// <inheritdoc/>
    public bool IsWritableDirectory(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Interop.Sys.Access(path, Interop.Sys.WriteOk | Interop.Sys.ExecuteOk) == 0;
    }

    /// <inheritdoc/>
    public bool IsListening(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return UnixSocketPath.IsLive(path, Interop.Sys.SockStream, out _);
    }
}
