using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Vsock.Net;

/// <summary>
/// A raw AF_VSOCK descriptor between <c>socket(2)</c> and the moment it becomes a <see cref="Socket"/>
/// (the runtime refuses to create sockets of a family it does not know, but adopts their descriptors;
/// from then on bind, connect, listen, accept and I/O are the runtime's, with a <see cref="VsockEndPoint"/>).
/// Owns the descriptor until <see cref="ToSocket"/> or <see cref="Dispose"/>.
/// </summary>
internal sealed class VsockDescriptor : IDisposable
{
    private int _fd;

    private VsockDescriptor(int fd) => _fd = fd;

    public int Fd => _fd >= 0 ? _fd : throw new ObjectDisposedException(nameof(VsockDescriptor));

    /// <summary><c>socket(AF_VSOCK, type | SOCK_CLOEXEC, 0)</c> (blocking, as the runtime's own new sockets are).</summary>
    public static VsockDescriptor Create(SocketType type)
    {
        if (type is not (SocketType.Stream or SocketType.Seqpacket))
        {
            throw new ArgumentOutOfRangeException(nameof(type), type, "vsock sockets are Stream or Seqpacket.");
        }

        int fd = VsockNative.Socket(VsockSocket.AfVsock, (int)type | VsockNative.SockCloexec, 0);
        return fd < 0 ? throw VsockErrors.Exception(Marshal.GetLastPInvokeError(), "socket(AF_VSOCK)") : new VsockDescriptor(fd);
    }

    /// <summary>Hands the descriptor over to a <see cref="Socket"/>.</summary>
    public Socket ToSocket()
    {
        int fd = Fd;
        _fd = -1;
        return WrapBlocking(fd);
    }

    /// <summary>Wraps a descriptor already in blocking mode into a <see cref="Socket"/> that owns it.</summary>
    public static Socket WrapBlocking(int fd)
    {
        var handle = new SafeSocketHandle((IntPtr)fd, ownsHandle: true);
        try
        {
            return new Socket(handle);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            VsockNative.Close(fd);
        }
    }
}
