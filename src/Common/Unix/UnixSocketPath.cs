using System.Runtime.InteropServices;

/// <summary>
/// Owns the life of a Unix socket file that this process listens on, for every listener the stack creates
/// (vhost-user, hybrid vsock, the daemon's checks): examine the path (statx: missing, a socket, something
/// else), probe a socket with a connect to tell a live listener from a stale leftover, refuse a live one,
/// remove a stale one, bind, restrict the file mode, listen, and on exit remove the file only if it is still
/// the one bound here (same device and inode).
/// </summary>
/// <remarks>
/// <para>Linked (compiled) into each assembly that needs it, like the interop files it is built on
/// (<c>src/Common/Interop/Linux</c>): no public surface, no extra assembly.</para>
/// <para>It must never remove anything that is not a socket, nor a socket that a live process serves, nor a
/// socket file it did not bind unless a probe found it stale; sockets handed over by systemd are never passed
/// here (their files belong to systemd). Binding is done with the system calls rather than
/// <c>Socket.Bind</c>, because the runtime unlinks the path of a socket it bound when that socket is
/// disposed, even if the file by then belongs to another process.</para>
/// </remarks>
internal static unsafe class UnixSocketPath
{
    /// <summary>What a path names, a final symbolic link not followed.</summary>
    internal enum Kind
    {
        /// <summary>Nothing: the path (or a parent directory) does not exist.</summary>
        Missing,

        /// <summary>A Unix domain socket.</summary>
        Socket,

        /// <summary>A directory.</summary>
        Directory,

        /// <summary>Anything else: a regular file, a symbolic link, a device, a FIFO.</summary>
        Other,

        /// <summary>The path could not be examined (the errno says why).</summary>
        Unknown,
    }

    /// <summary>Why a path cannot be listened on.</summary>
    internal enum Error
    {
        /// <summary>No error.</summary>
        None,

        /// <summary>The path is empty, holds a NUL or does not fit in <c>sockaddr_un</c> (107 bytes).</summary>
        InvalidPath,

        /// <summary>A live process listens there (or bind found the address taken).</summary>
        InUse,

        /// <summary>Something that is not a socket is there; it is never replaced.</summary>
        NotASocket,

        /// <summary>Permission denied.</summary>
        AccessDenied,

        /// <summary>Any other failure (the errno says which).</summary>
        Failed,
    }

    /// <summary>Examines <paramref name="path"/> without following a final symbolic link.</summary>
    /// <param name="path">The path.</param>
    /// <param name="errno">The statx errno when the answer is <see cref="Kind.Unknown"/> or <see cref="Kind.Missing"/>, else 0.</param>
    /// <returns>What the path names.</returns>
    internal static Kind GetKind(string path, out int errno)
    {
        Interop.Sys.StatxBuffer buffer = default;
        if (Interop.Sys.Statx(Interop.Sys.AtFdCwd, path, Interop.Sys.AtSymlinkNoFollow, Interop.Sys.StatxType, &buffer) != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return errno is Interop.Errors.ENOENT or Interop.Errors.ENOTDIR ? Kind.Missing : Kind.Unknown;
        }

        errno = 0;
        return buffer.FileType switch
        {
            Interop.Sys.SIfSock => Kind.Socket,
            Interop.Sys.SIfDir => Kind.Directory,
            _ => Kind.Other,
        };
    }

    /// <summary>
    /// Whether a live process serves the socket at <paramref name="path"/>: a non-blocking connect that succeeds,
    /// finds the backlog full (EAGAIN), is in progress, or meets a listener of the other socket type (EPROTOTYPE).
    /// </summary>
    /// <param name="path">The socket path.</param>
    /// <param name="socketType"><see cref="Interop.Sys.SockStream"/> or <see cref="Interop.Sys.SockSeqPacket"/>.</param>
    /// <param name="errno">The connect errno (0 when it connected; ECONNREFUSED for a stale file).</param>
    /// <returns><see langword="true"/> when someone listens.</returns>
    internal static bool IsLive(string path, int socketType, out int errno)
    {
        if (!Interop.Sys.SockaddrUn.TryCreate(path, out Interop.Sys.SockaddrUn address, out uint length))
        {
            errno = Interop.Errors.EINVAL;
            return false;
        }

        int fd = Interop.Sys.Socket(Interop.Sys.AfUnix, socketType | Interop.Sys.SockNonBlock | Interop.Sys.SockCloexec, 0);
        if (fd < 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return false;
        }

        try
        {
            while (true)
            {
                if (Interop.Sys.Connect(fd, &address, length) == 0)
                {
                    errno = 0;
                    return true;
                }

                errno = Marshal.GetLastPInvokeError();
                if (errno != Interop.Errors.EINTR)
                {
                    return errno is Interop.Errors.EAGAIN or Interop.Errors.EINPROGRESS or Interop.Errors.EPROTOTYPE;
                }
            }
        }
        finally
        {
            _ = Interop.Sys.Close(fd);
        }
    }

    /// <summary>
    /// Makes <paramref name="path"/> free to bind: nothing there is fine; a socket nobody serves (connection
    /// refused) is removed; a live socket, or anything that is not a socket, is refused.
    /// </summary>
    /// <param name="path">The socket path.</param>
    /// <param name="socketType">The type the caller will listen with (the probe uses it).</param>
    /// <param name="errno">The errno behind an error, else 0.</param>
    /// <returns><see cref="Error.None"/> when the path is free.</returns>
    internal static Error PrepareForBind(string path, int socketType, out int errno)
    {
        Kind kind = GetKind(path, out errno);
        if (kind == Kind.Missing || (kind == Kind.Unknown && errno == Interop.Errors.ENOSYS))
        {
            // Nothing there, or no statx: bind reports EADDRINUSE if something is there.
            errno = 0;
            return Error.None;
        }

        if (kind == Kind.Unknown)
        {
            return errno == Interop.Errors.EACCES ? Error.AccessDenied : Error.Failed;
        }

        if (kind != Kind.Socket)
        {
            errno = 0;
            return Error.NotASocket;
        }

        if (IsLive(path, socketType, out errno))
        {
            return Error.InUse;
        }

        switch (errno)
        {
            case Interop.Errors.ECONNREFUSED:
                return RemoveStale(path, out errno);
            case Interop.Errors.ENOENT:
                errno = 0;
                return Error.None;
            case Interop.Errors.EACCES:
                return Error.AccessDenied;
            default:
                return Error.Failed;
        }
    }

    /// <summary>
    /// Prepares <paramref name="path"/> (see <see cref="PrepareForBind"/>), then creates a close-on-exec socket of
    /// <paramref name="socketType"/>, binds it there, restricts the file to <paramref name="mode"/> if given, and
    /// listens.
    /// </summary>
    /// <param name="path">The socket path.</param>
    /// <param name="socketType"><see cref="Interop.Sys.SockStream"/> or <see cref="Interop.Sys.SockSeqPacket"/>.</param>
    /// <param name="backlog">The listen backlog.</param>
    /// <param name="mode">The file mode to set before listening (for example owner read/write), or null to keep the umask's.</param>
    /// <param name="fd">The listening descriptor, which the caller now owns; -1 on error.</param>
    /// <param name="identity">The bound file's identity, for <see cref="RemoveIfOurs"/>; default when it could not be read.</param>
    /// <param name="errno">The errno behind an error (0 when the failure has none), else 0.</param>
    /// <returns><see cref="Error.None"/> when listening.</returns>
    internal static Error Listen(string path, int socketType, int backlog, UnixFileMode? mode, out int fd, out Identity identity, out int errno)
    {
        fd = -1;
        identity = default;
        if (!Interop.Sys.SockaddrUn.TryCreate(path, out Interop.Sys.SockaddrUn address, out uint length))
        {
            errno = 0;
            return Error.InvalidPath;
        }

        Error prepared = PrepareForBind(path, socketType, out errno);
        if (prepared != Error.None)
        {
            return prepared;
        }

        int socket = Interop.Sys.Socket(Interop.Sys.AfUnix, socketType | Interop.Sys.SockCloexec, 0);
        if (socket < 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return Error.Failed;
        }

        if (Interop.Sys.Bind(socket, &address, length) != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            _ = Interop.Sys.Close(socket);
            return errno switch
            {
                Interop.Errors.EADDRINUSE => Error.InUse,
                Interop.Errors.EACCES => Error.AccessDenied,
                _ => Error.Failed,
            };
        }

        Identity bound = GetIdentity(path);
        try
        {
            if (mode is { } restricted && !OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(path, restricted);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _ = Interop.Sys.Close(socket);
            RemoveIfOurs(path, bound);
            errno = e is UnauthorizedAccessException ? Interop.Errors.EACCES : 0;
            return e is UnauthorizedAccessException ? Error.AccessDenied : Error.Failed;
        }

        if (Interop.Sys.Listen(socket, backlog) != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            _ = Interop.Sys.Close(socket);
            RemoveIfOurs(path, bound);
            return Error.Failed;
        }

        fd = socket;
        identity = bound;
        errno = 0;
        return Error.None;
    }

    /// <summary>The identity of the socket file at <paramref name="path"/>; default (unknown) when it is not a socket or cannot be examined.</summary>
    /// <param name="path">The socket path.</param>
    /// <returns>The identity.</returns>
    internal static Identity GetIdentity(string path)
    {
        Interop.Sys.StatxBuffer buffer = default;
        if (Interop.Sys.Statx(Interop.Sys.AtFdCwd, path, Interop.Sys.AtSymlinkNoFollow, Interop.Sys.StatxType | Interop.Sys.StatxIno, &buffer) != 0
            || buffer.FileType != Interop.Sys.SIfSock)
        {
            return default;
        }

        return new Identity(buffer.DeviceMajor, buffer.DeviceMinor, buffer.Inode);
    }

    /// <summary>
    /// Removes the socket file at <paramref name="path"/> if it is still the one <paramref name="identity"/> names
    /// (another process may have taken the path over since). Best effort: never throws.
    /// </summary>
    /// <param name="path">The socket path.</param>
    /// <param name="identity">What <see cref="Listen"/> reported; an unknown identity removes nothing.</param>
    /// <returns><see langword="true"/> when the file was removed.</returns>
    internal static bool RemoveIfOurs(string path, Identity identity)
    {
        if (!identity.IsKnown || GetIdentity(path) != identity)
        {
            return false;
        }

        try
        {
            File.Delete(path);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: a leftover socket file is found stale and replaced at the next start.
            return false;
        }
    }

    /// <summary>Removes <paramref name="path"/> if it is a socket; anything else is left alone.</summary>
    /// <param name="path">The socket path.</param>
    /// <returns><see langword="true"/> when a socket was removed.</returns>
    /// <exception cref="IOException">The socket exists but cannot be removed.</exception>
    /// <exception cref="UnauthorizedAccessException">The socket exists but may not be removed.</exception>
    internal static bool RemoveIfSocket(string path)
    {
        if (GetKind(path, out _) != Kind.Socket)
        {
            return false;
        }

        File.Delete(path);
        return true;
    }

    private static Error RemoveStale(string path, out int errno)
    {
        try
        {
            File.Delete(path);
            errno = 0;
            return Error.None;
        }
        catch (UnauthorizedAccessException)
        {
            errno = Interop.Errors.EACCES;
            return Error.AccessDenied;
        }
        catch (IOException)
        {
            errno = 0;
            return Error.Failed;
        }
    }

    /// <summary>Which file a socket path named when it was bound: its device and inode (zero when unknown).</summary>
    /// <param name="DeviceMajor">The device's major number.</param>
    /// <param name="DeviceMinor">The device's minor number.</param>
    /// <param name="Inode">The inode number.</param>
    internal readonly record struct Identity(uint DeviceMajor, uint DeviceMinor, ulong Inode)
    {
        /// <summary>Whether the identity was read (inode numbers are never 0).</summary>
        public bool IsKnown => Inode != 0;
    }
}
