using System.Net.Sockets;
using System.Runtime.InteropServices;
using VhostUserVsock.Configuration.Interop;

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
        byte* buffer = stackalloc byte[FileSystemCalls.StatxBufferSize];
        if (FileSystemCalls.Statx(FileSystemCalls.AtFdCwd, path, FileSystemCalls.AtSymlinkNoFollow, FileSystemCalls.StatxType, buffer) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            return errno is FileSystemCalls.ENOENT or FileSystemCalls.ENOTDIR ? PathKind.Missing : PathKind.Unknown;
        }

        ushort type = (ushort)(*(ushort*)(buffer + FileSystemCalls.StatxModeOffset) & FileSystemCalls.FileTypeMask);
        return type switch
        {
            FileSystemCalls.FileTypeSocket => PathKind.Socket,
            FileSystemCalls.FileTypeDirectory => PathKind.Directory,
            _ => PathKind.Other,
        };
    }

    /// <inheritdoc/>
    public bool IsWritableDirectory(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return FileSystemCalls.Access(path, FileSystemCalls.WriteOk | FileSystemCalls.ExecuteOk) == 0;
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
