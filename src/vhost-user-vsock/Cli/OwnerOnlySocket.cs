using System.Net.Sockets;

namespace VhostUserVsock.Cli;

/// <summary>
/// A Unix stream socket the daemon serves to its operator (the control socket, a Prometheus endpoint on
/// <c>unix:PATH</c>): bound through <see cref="UnixSocketPath"/> (a live socket at the path is refused, a stale one
/// replaced, anything else never touched), mode 0600 before it listens, and its file removed at the end only if it
/// is still the one bound here.
/// </summary>
internal sealed class OwnerOnlySocket : IDisposable
{
    private readonly UnixSocketPath.Identity _identity;

    private OwnerOnlySocket(string path, Socket listener, UnixSocketPath.Identity identity)
    {
        Path = path;
        Listener = listener;
        _identity = identity;
    }

    /// <summary>The socket path.</summary>
    public string Path { get; }

    /// <summary>The listening socket.</summary>
    public Socket Listener { get; }

    /// <summary>Binds and listens at <paramref name="path"/>.</summary>
    /// <param name="path">The socket path.</param>
    /// <param name="what">What the socket is, for messages ("control socket").</param>
    /// <returns>The listening socket.</returns>
    /// <exception cref="IOException">The path is in use, is not a socket, or cannot be bound.</exception>
    public static OwnerOnlySocket Listen(string path, string what)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        UnixSocketPath.Error error = UnixSocketPath.Listen(
            path, Interop.Sys.SockStream, 16, UnixFileMode.UserRead | UnixFileMode.UserWrite, out int fd, out UnixSocketPath.Identity identity, out int errno);
        if (error != UnixSocketPath.Error.None)
        {
            string detail = errno != 0 ? $" ({System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno)})" : string.Empty;
            throw new IOException(error switch
            {
                UnixSocketPath.Error.InUse => $"the {what} {path} is in use by another process",
                UnixSocketPath.Error.NotASocket => $"the {what} path {path} exists and is not a socket",
                UnixSocketPath.Error.InvalidPath => $"the {what} path {path} does not fit in a Unix socket address",
                _ => $"cannot listen on the {what} {path}: {error}{detail}",
            });
        }

        try
        {
            return new OwnerOnlySocket(path, new Socket(new SafeSocketHandle(fd, ownsHandle: true)), identity);
        }
        catch (SocketException ex)
        {
            Interop.Sys.Close(fd);
            UnixSocketPath.RemoveIfOurs(path, identity);
            throw new IOException($"cannot listen on the {what} {path}: {ex.Message}", ex);
        }
    }

    /// <summary>Closes the socket and removes its file if it is still this one.</summary>
    public void Dispose()
    {
        Listener.Dispose();
        UnixSocketPath.RemoveIfOurs(Path, _identity);
    }
}
