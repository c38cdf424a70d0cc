using System.Runtime.InteropServices;

namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// The Linux socket and file calls the Unix backend needs and the runtime does not expose without
/// exceptions or allocations: <c>socket</c>, <c>connect</c>, <c>recvmsg</c>, <c>sendmsg</c>,
/// <c>shutdown</c>, <c>close</c>, <c>statx</c>. Owns the constants and the 64-bit Linux layouts of
/// <c>msghdr</c>, <c>iovec</c> and <c>struct statx</c>. Must never be used with a blocking flag set:
/// every receive and send passes <c>MSG_DONTWAIT</c>, every send <c>MSG_NOSIGNAL</c>.
/// Internal: the public surface is <see cref="UnixSocketIo"/>, <see cref="UnixPortConnector"/> and
/// <see cref="HybridVsockListener"/>.
/// </summary>
internal static unsafe partial class UnixNative
{
    internal const int AfUnix = 1;
    internal const int SockStream = 1;
    internal const int SockSeqPacket = 5;
    internal const int SockNonBlock = 0x800;
    internal const int SockCloexec = 0x80000;

    internal const int SolSocket = 1;
    internal const int SoPassCred = 16;

    internal const int MsgPeek = 0x2;
    internal const int MsgCTrunc = 0x8;
    internal const int MsgTrunc = 0x20;
    internal const int MsgDontWait = 0x40;
    internal const int MsgNoSignal = 0x4000;
    internal const int MsgCmsgCloexec = 0x40000000;

    internal const int ShutRd = 0;
    internal const int ShutWr = 1;

    internal const int ENOENT = 2;
    internal const int EINTR = 4;
    internal const int EBADF = 9;
    internal const int EAGAIN = 11;
    internal const int EACCES = 13;
    internal const int EINVAL = 22;
    internal const int EPIPE = 32;
    internal const int ENAMETOOLONG = 36;
    internal const int ENOSYS = 38;
    internal const int EMSGSIZE = 90;
    internal const int EPROTOTYPE = 91;
    internal const int EADDRINUSE = 98;
    internal const int ECONNRESET = 104;
    internal const int ENOTCONN = 107;
    internal const int ECONNREFUSED = 111;

    internal const int AtFdCwd = -100;
    internal const int AtSymlinkNoFollow = 0x100;
    internal const uint StatxType = 0x1;
    internal const uint StatxIno = 0x100;
    internal const int StatxSize = 256;
    internal const int StatxModeOffset = 28;
    internal const int StatxInoOffset = 32;
    internal const int StatxDevMajorOffset = 136;
    internal const int StatxDevMinorOffset = 140;
    internal const int SIfMt = 0xF000;
    internal const int SIfSock = 0xC000;

    /// <summary>Bytes of <c>sun_path</c> in <c>struct sockaddr_un</c>, the terminating NUL included.</summary>
    internal const int SunPathLength = 108;

    /// <summary>True where the layouts in this class hold: Linux with 64-bit pointers.</summary>
    internal static readonly bool IsSupported = OperatingSystem.IsLinux() && IntPtr.Size == 8;

    /// <summary><c>struct msghdr</c> on 64-bit Linux.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary><c>struct iovec</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    internal static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "connect", SetLastError = true)]
    internal static partial int Connect(int fd, byte* address, uint addressLength);

    [LibraryImport("libc", EntryPoint = "bind", SetLastError = true)]
    internal static partial int Bind(int fd, byte* address, uint addressLength);

    [LibraryImport("libc", EntryPoint = "listen", SetLastError = true)]
    internal static partial int Listen(int fd, int backlog);

    [LibraryImport("libc", EntryPoint = "recvmsg", SetLastError = true)]
    internal static partial nint RecvMsg(nint fd, MsgHdr* message, int flags);

    [LibraryImport("libc", EntryPoint = "sendmsg", SetLastError = true)]
    internal static partial nint SendMsg(nint fd, MsgHdr* message, int flags);

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    internal static partial nint Recv(nint fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    internal static partial nint Send(nint fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", EntryPoint = "shutdown", SetLastError = true)]
    internal static partial int Shutdown(nint fd, int how);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "setsockopt", SetLastError = true)]
    internal static partial int SetSockOpt(nint fd, int level, int name, void* value, uint valueLength);

    internal const int EpollCloexec = 0x80000;
    internal const int EpollCtlAdd = 1;
    internal const int EpollCtlDel = 2;
    internal const int EpollCtlMod = 3;
    internal const uint EpollIn = 0x001;
    internal const uint EpollOut = 0x004;
    internal const uint EpollErr = 0x008;
    internal const uint EpollHup = 0x010;
    internal const uint EpollRdHup = 0x2000;
    internal const uint EpollOneShot = 1u << 30;
    internal const int EfdCloexec = 0x80000;
    internal const int EfdNonBlock = 0x800;

    /// <summary>
    /// Size of <c>struct epoll_event</c>: packed (12 bytes, data at offset 4) on x86-64, naturally
    /// aligned (16 bytes, data at offset 8) elsewhere.
    /// </summary>
    internal static readonly int EpollEventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;

    /// <summary>Offset of <c>epoll_event.data</c>.</summary>
    internal static readonly int EpollDataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    internal static partial int EpollCreate1(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    internal static partial int EpollCtl(int epfd, int op, nint fd, byte* ev);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    internal static partial int EpollWait(int epfd, byte* events, int maxEvents, int timeout);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    internal static partial int EventFd(uint initial, int flags);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    internal static partial nint Read(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    internal static partial nint Write(int fd, byte* buffer, nuint count);

    internal const short PollIn = 0x001;
    internal const short PollHup = 0x010;

    /// <summary><c>struct pollfd</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    internal static partial int Poll(PollFd* fds, nuint count, int timeout);

    /// <summary>
    /// The <c>poll</c> events pending on <paramref name="fd"/> right now (timeout 0, never blocks), or
    /// 0 on failure. <see cref="PollHup"/> on a Unix socket means both directions are shut: the peer
    /// closed (or shut down sending after we shut down sending).
    /// </summary>
    internal static short PollNow(nint fd)
    {
        PollFd entry = new() { Fd = (int)fd, Events = PollIn };
        int rc;
        do
        {
            rc = Poll(&entry, 1, 0);
        }
        while (rc < 0 && Marshal.GetLastPInvokeError() == EINTR);

        return rc > 0 ? entry.Revents : (short)0;
    }

    /// <summary><c>epoll_ctl</c> with an event built for this architecture's layout; returns 0 or the errno.</summary>
    internal static int EpollControl(int epfd, int op, nint fd, uint events, ulong data)
    {
        byte* ev = stackalloc byte[16];
        *(uint*)ev = events;
        *(ulong*)(ev + EpollDataOffset) = data;
        return EpollCtl(epfd, op, fd, ev) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true)]
    internal static partial int Statx(int dirFd, byte* path, int flags, uint mask, byte* buffer);

    /// <summary>
    /// Writes a <c>sockaddr_un</c> for <paramref name="utf8Path"/> (no NUL) followed by
    /// <paramref name="suffix"/> into <paramref name="destination"/> (at least 110 bytes).
    /// Returns the address length to pass to <c>connect</c>, or 0 if the path does not fit.
    /// </summary>
    internal static int BuildSockAddr(ReadOnlySpan<byte> utf8Path, ReadOnlySpan<byte> suffix, Span<byte> destination)
    {
        int pathLength = utf8Path.Length + suffix.Length;
        if (pathLength == 0 || pathLength >= SunPathLength || destination.Length < 2 + SunPathLength)
        {
            return 0;
        }

        destination[0] = AfUnix;
        destination[1] = 0;
        utf8Path.CopyTo(destination[2..]);
        suffix.CopyTo(destination[(2 + utf8Path.Length)..]);
        destination[2 + pathLength] = 0;
        return 2 + pathLength + 1;
    }

    /// <summary>
    /// <c>statx</c> without following a final symlink. Returns 0 and the file type bits, device
    /// and inode, or the errno (<see cref="ENOENT"/> if nothing is there).
    /// </summary>
    internal static int StatPath(string path, out int fileType, out ulong device, out ulong inode)
    {
        fileType = 0;
        device = 0;
        inode = 0;
        if (!IsSupported)
        {
            return ENOSYS;
        }

        int byteCount = System.Text.Encoding.UTF8.GetByteCount(path);
        if (byteCount >= 4096)
        {
            return ENAMETOOLONG;
        }

        Span<byte> utf8 = stackalloc byte[byteCount + 1];
        System.Text.Encoding.UTF8.GetBytes(path, utf8);
        utf8[byteCount] = 0;
        byte* buffer = stackalloc byte[StatxSize];
        int rc;
        try
        {
            fixed (byte* p = utf8)
            {
                rc = Statx(AtFdCwd, p, AtSymlinkNoFollow, StatxType | StatxIno, buffer);
            }
        }
        catch (EntryPointNotFoundException)
        {
            return ENOSYS;
        }

        if (rc != 0)
        {
            return Marshal.GetLastPInvokeError();
        }

        fileType = *(ushort*)(buffer + StatxModeOffset) & SIfMt;
        inode = *(ulong*)(buffer + StatxInoOffset);
        device = ((ulong)*(uint*)(buffer + StatxDevMajorOffset) << 32) | *(uint*)(buffer + StatxDevMinorOffset);
        return 0;
    }

    /// <summary>
    /// One non-blocking <c>connect</c> of a fresh close-on-exec socket of <paramref name="socketType"/>
    /// to the <c>sockaddr_un</c> in <paramref name="address"/>. On success returns 0 and the connected
    /// descriptor (the caller owns it); otherwise returns the errno and closes the descriptor,
    /// except for <see cref="EAGAIN"/> (listener backlog full), where the unconnected descriptor is
    /// returned in <paramref name="fd"/> so the caller may retry <see cref="RetryConnect"/> on it.
    /// </summary>
    internal static int TryConnect(int socketType, ReadOnlySpan<byte> address, out int fd)
    {
        fd = Socket(AfUnix, socketType | SockNonBlock | SockCloexec, 0);
        if (fd < 0)
        {
            return Marshal.GetLastPInvokeError();
        }

        int error = RetryConnect(fd, address);
        if (error != 0 && error != EAGAIN)
        {
            Close(fd);
            fd = -1;
        }

        return error;
    }

    /// <summary>
    /// Creates a close-on-exec socket of <paramref name="socketType"/>, binds it to the
    /// <c>sockaddr_un</c> in <paramref name="address"/> and listens. Returns 0 and the descriptor
    /// (the caller owns it), or the errno (nothing to close). Done here rather than with
    /// <c>Socket.Bind</c> because the runtime unlinks the path of a socket it bound when the socket
    /// is disposed, even if the file by then belongs to another process.
    /// </summary>
    internal static int BindAndListen(int socketType, ReadOnlySpan<byte> address, int backlog, out int fd)
    {
        fd = Socket(AfUnix, socketType | SockCloexec, 0);
        if (fd < 0)
        {
            return Marshal.GetLastPInvokeError();
        }

        fixed (byte* p = address)
        {
            if (Bind(fd, p, (uint)address.Length) != 0 || Listen(fd, backlog) != 0)
            {
                int error = Marshal.GetLastPInvokeError();
                Close(fd);
                fd = -1;
                return error;
            }
        }

        return 0;
    }

    /// <summary>Retries <c>connect</c> on an unconnected descriptor; returns 0 or the errno.</summary>
    internal static int RetryConnect(int fd, ReadOnlySpan<byte> address)
    {
        fixed (byte* p = address)
        {
            while (true)
            {
                if (Connect(fd, p, (uint)address.Length) == 0)
                {
                    return 0;
                }

                int error = Marshal.GetLastPInvokeError();
                if (error != EINTR)
                {
                    return error;
                }
            }
        }
    }
}
