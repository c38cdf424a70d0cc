using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace VhostUserVsock.Configuration;

/// <summary>Answers <see cref="IFileSystemProbe"/> questions with Linux system calls (statx, access, connect).</summary>
public sealed class UnixFileSystemProbe : IFileSystemProbe
{
    /// <summary>The shared instance.</summary>
    public static UnixFileSystemProbe Instance { get; } = new();

    /// <inheritdoc/>
    public unsafe PathKind GetKind(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        Interop.Sys.StatxBuffer buffer = default;
        if (Interop.Sys.Statx(Interop.Sys.AtFdCwd, path, Interop.Sys.AtSymlinkNoFollow, Interop.Sys.StatxType, &buffer) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            return errno is Interop.Errors.ENOENT or Interop.Errors.ENOTDIR ? PathKind.Missing : PathKind.Unknown;
        }

        return buffer.FileType switch
        {
            Interop.Sys.SIfSock => PathKind.Socket,
            Interop.Sys.SIfDir => PathKind.Directory,
            _ => PathKind.Other,
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
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { Blocking = false };
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress or SocketError.TryAgain)
        {
            // The listener's backlog is full: someone is listening.
            return true;
        }
        catch (Exception ex) when (ex is SocketException or ArgumentException)
        {
            // Refused (a stale socket file), or not connectable at all: nobody serves it.
            return false;
        }
    }
}
