using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Vsock.Net;

/// <summary>
/// A raw AF_VSOCK descriptor between <c>socket(2)</c> and the moment it becomes a <see cref="Socket"/>:
/// creation, bind/connect/listen/accept with a <c>sockaddr_vm</c>, waiting for readiness with
/// <c>poll(2)</c> in bounded slices (so cancellation and deadlines are honoured), and hand-over.
/// Owns the descriptor until <see cref="ToSocket"/> or <see cref="Dispose"/>; never blocks without a bound.
/// </summary>
internal sealed unsafe class VsockDescriptor : IDisposable
{
    private const int PollSliceMs = 100;
    private int _fd;

    private VsockDescriptor(int fd) => _fd = fd;

    public int Fd => _fd >= 0 ? _fd : throw new ObjectDisposedException(nameof(VsockDescriptor));

    /// <summary><c>socket(AF_VSOCK, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)</c>.</summary>
    public static VsockDescriptor Create(SocketType type)
    {
        if (type is not (SocketType.Stream or SocketType.Seqpacket))
        {
            throw new ArgumentOutOfRangeException(nameof(type), type, "vsock sockets are Stream or Seqpacket.");
        }

        int fd = VsockNative.Socket(VsockSocket.AfVsock, (int)type | VsockNative.SockCloexec | VsockNative.SockNonBlock, 0);
        return fd < 0 ? throw VsockErrors.Exception(Marshal.GetLastPInvokeError(), "socket(AF_VSOCK)") : new VsockDescriptor(fd);
    }

    public static VsockDescriptor Adopt(int fd) => new(fd);

    public void Bind(VsockEndPoint endPoint)
    {
        byte* address = stackalloc byte[VsockEndPoint.SocketAddressSize];
        endPoint.WriteTo(new Span<byte>(address, VsockEndPoint.SocketAddressSize));
        if (VsockNative.Bind(Fd, address, VsockEndPoint.SocketAddressSize) != 0)
        {
            throw VsockErrors.Exception(Marshal.GetLastPInvokeError(), $"bind({endPoint})");
        }
    }

    public void Listen(int backlog)
    {
        if (VsockNative.Listen(Fd, backlog) != 0)
        {
            throw VsockErrors.Exception(Marshal.GetLastPInvokeError(), "listen");
        }
    }

    public VsockEndPoint LocalEndPoint()
    {
        byte* address = stackalloc byte[32];
        uint length = 32;
        if (VsockNative.GetSockName(Fd, address, &length) != 0)
        {
            throw VsockErrors.Exception(Marshal.GetLastPInvokeError(), "getsockname");
        }

        return VsockEndPoint.TryRead(new ReadOnlySpan<byte>(address, (int)Math.Min(length, 32u)), out VsockEndPoint? endPoint)
            ? endPoint!
            : throw new InvalidOperationException("getsockname returned no sockaddr_vm.");
    }

    /// <summary>Non-blocking connect, then waits for it to finish (or the deadline or cancellation).</summary>
    public void Connect(VsockEndPoint endPoint, long deadlineTicks, CancellationToken cancellationToken)
    {
        byte* address = stackalloc byte[VsockEndPoint.SocketAddressSize];
        endPoint.WriteTo(new Span<byte>(address, VsockEndPoint.SocketAddressSize));
        if (VsockNative.Connect(Fd, address, VsockEndPoint.SocketAddressSize) == 0)
        {
            return;
        }

        int errno = Marshal.GetLastPInvokeError();
        if (errno is not (VsockNative.EINPROGRESS or VsockNative.EINTR or VsockNative.EAGAIN))
        {
            throw VsockErrors.Exception(errno, $"connect({endPoint})");
        }

        WaitFor(VsockNative.PollOut, deadlineTicks, cancellationToken, $"connect({endPoint})");
        int soError = 0;
        uint length = sizeof(int);
        if (VsockNative.GetSockOpt(Fd, VsockNative.SolSocket, VsockNative.SoError, &soError, &length) != 0)
        {
            throw VsockErrors.Exception(Marshal.GetLastPInvokeError(), "getsockopt(SO_ERROR)");
        }

        if (soError != 0)
        {
            throw VsockErrors.Exception(soError, $"connect({endPoint})");
        }
    }

    /// <summary>Accepts one connection; waits in bounded slices while none is pending.</summary>
    public (int Fd, VsockEndPoint? Remote) Accept(CancellationToken cancellationToken)
    {
        byte* address = stackalloc byte[32];
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            uint length = 32;
            int fd = VsockNative.Accept4(Fd, address, &length, VsockNative.SockCloexec);
            if (fd >= 0)
            {
                VsockEndPoint.TryRead(new ReadOnlySpan<byte>(address, (int)Math.Min(length, 32u)), out VsockEndPoint? remote);
                return (fd, remote);
            }

            int errno = Marshal.GetLastPInvokeError();
            if (errno is not (VsockNative.EAGAIN or VsockNative.EINTR or 103)) // 103 ECONNABORTED: try the next one
            {
                throw VsockErrors.Exception(errno, "accept4");
            }

            WaitFor(VsockNative.PollIn, long.MaxValue, cancellationToken, "accept4");
        }
    }

    /// <summary>Polls for <paramref name="events"/> in slices of at most 100 ms until ready, the deadline, or cancellation.</summary>
    private void WaitFor(short events, long deadlineTicks, CancellationToken cancellationToken, string call)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long now = Environment.TickCount64;
            if (now >= deadlineTicks)
            {
                throw VsockErrors.Exception(110, call); // ETIMEDOUT
            }

            int slice = (int)Math.Min(PollSliceMs, deadlineTicks - now);
            var poll = new VsockNative.PollFd { Fd = Fd, Events = events };
            int n = VsockNative.Poll(&poll, 1, slice);
            if (n > 0)
            {
                return;
            }

            if (n < 0 && Marshal.GetLastPInvokeError() is int errno && errno != VsockNative.EINTR)
            {
                throw VsockErrors.Exception(errno, "poll");
            }
        }
    }

    /// <summary>Sets the descriptor blocking (what a <see cref="Socket"/> made from a handle expects) and hands it over.</summary>
    public Socket ToSocket()
    {
        int fd = Fd;
        SetBlocking(fd);
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

    public static void SetBlocking(int fd)
    {
        int flags = VsockNative.Fcntl(fd, VsockNative.FGetFl, 0);
        if (flags < 0 || VsockNative.Fcntl(fd, VsockNative.FSetFl, flags & ~VsockNative.ONonBlock) < 0)
        {
            throw VsockErrors.Exception(Marshal.GetLastPInvokeError(), "fcntl(O_NONBLOCK)");
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
