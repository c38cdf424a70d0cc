using System.Runtime.InteropServices;

namespace Vsock.Net;

/// <summary>
/// The Linux calls the runtime does not make for an address family it does not know:
/// <c>socket</c>, <c>bind</c>, <c>connect</c>, <c>listen</c>, <c>accept4</c>, <c>getsockname</c>,
/// <c>poll</c>, <c>fcntl</c>, <c>open</c>/<c>ioctl</c> (the local CID) and <c>close</c>.
/// Owns the constants (x86-64 and arm64 Linux values). Never used on a descriptor it does not own.
/// </summary>
internal static unsafe partial class VsockNative
{
    internal const int SockCloexec = 0x80000;
    internal const int SockNonBlock = 0x800;
    internal const int SolSocket = 1;
    internal const int SoError = 4;
    internal const int FGetFl = 3;
    internal const int FSetFl = 4;
    internal const int ONonBlock = 0x800;
    internal const int ORdOnly = 0;
    internal const int OCloexec = 0x80000;
    internal const short PollIn = 0x1;
    internal const short PollOut = 0x4;
    internal const short PollErr = 0x8;
    internal const short PollHup = 0x10;
    internal const uint IoctlGetLocalCid = 0x7b9; // _IO(7, 0xb9)

    internal const int EINTR = 4;
    internal const int EAGAIN = 11;
    internal const int EINPROGRESS = 115;

    [StructLayout(LayoutKind.Sequential)]
    internal struct PollFd
    {
        public int Fd;
        public short Events;
        public short REvents;
    }

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    internal static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "bind", SetLastError = true)]
    internal static partial int Bind(int fd, byte* address, uint length);

    [LibraryImport("libc", EntryPoint = "connect", SetLastError = true)]
    internal static partial int Connect(int fd, byte* address, uint length);

    [LibraryImport("libc", EntryPoint = "listen", SetLastError = true)]
    internal static partial int Listen(int fd, int backlog);

    [LibraryImport("libc", EntryPoint = "accept4", SetLastError = true)]
    internal static partial int Accept4(int fd, byte* address, uint* length, int flags);

    [LibraryImport("libc", EntryPoint = "getsockname", SetLastError = true)]
    internal static partial int GetSockName(int fd, byte* address, uint* length);

    [LibraryImport("libc", EntryPoint = "getsockopt", SetLastError = true)]
    internal static partial int GetSockOpt(int fd, int level, int name, void* value, uint* length);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    internal static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    internal static partial int Fcntl(int fd, int command, int argument);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int Ioctl(int fd, nuint request, uint* value);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);
}
