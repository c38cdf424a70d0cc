using System.Runtime.InteropServices;

namespace Vhost.User.Interop;

/// <summary>
/// The Linux calls the vhost-user backend needs that the runtime does not offer: socket messages with
/// SCM_RIGHTS, eventfd, read/write on eventfds, poll, fcntl, statx and close. Internal: the public
/// surface is <see cref="VhostUserServer"/> and <see cref="VhostUserConnection"/>.
/// </summary>
/// <remarks>Constants are the generic Linux values, identical on x86-64 and arm64.</remarks>
internal static unsafe partial class Libc
{
    internal const int EINTR = 4;
    internal const int EAGAIN = 11;

    internal const int SolSocket = 1;
    internal const int ScmRights = 1;
    internal const int MsgCtrunc = 0x8;
    internal const int MsgDontWait = 0x40;
    internal const int MsgNoSignal = 0x4000;
    internal const int MsgCmsgCloexec = 0x40000000;

    internal const short PollIn = 0x1;
    internal const short PollOut = 0x4;
    internal const short PollErr = 0x8;
    internal const short PollHup = 0x10;
    internal const short PollNval = 0x20;

    internal const int EfdCloexec = 0x80000;
    internal const int EfdNonblock = 0x800;

    internal const int FGetFl = 3;
    internal const int FSetFl = 4;
    internal const int ONonblock = 0x800;

    internal const int AtFdCwd = -100;
    internal const int AtSymlinkNoFollow = 0x100;
    internal const int AtEmptyPath = 0x1000;
    internal const uint StatxType = 0x1;
    internal const uint StatxIno = 0x100;
    internal const uint StatxSize = 0x200;
    internal const ushort SIfMt = 0xF000;
    internal const ushort SIfSock = 0xC000;
    internal const ushort SIfReg = 0x8000;

    /// <summary>Size of <c>struct cmsghdr</c> on 64-bit Linux (<c>CMSG_LEN(0)</c>).</summary>
    internal const int CmsgHeaderSize = 16;

    [LibraryImport("libc", EntryPoint = "recvmsg", SetLastError = true)]
    internal static partial nint RecvMsg(int socket, MsgHdr* message, int flags);

    [LibraryImport("libc", EntryPoint = "sendmsg", SetLastError = true)]
    internal static partial nint SendMsg(int socket, MsgHdr* message, int flags);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    internal static partial int EventFd(uint initialValue, int flags);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    internal static partial nint Read(int fd, void* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    internal static partial nint Write(int fd, void* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    internal static partial int Poll(PollFd* fds, nuint count, int timeoutMilliseconds);

    /// <summary><c>fcntl</c> command: the seals of a memfd.</summary>
    internal const int FGetSeals = 1034;

    /// <summary>Seal: the file cannot shrink.</summary>
    internal const int FSealShrink = 0x0002;

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    internal static partial int Fcntl(int fd, int command, int argument);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Statx(int directoryFd, string path, int flags, uint mask, StatxBuffer* buffer);

    [LibraryImport("libc", EntryPoint = "rename", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Rename(string oldPath, string newPath);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);

    /// <summary><c>CMSG_ALIGN</c>: rounds up to the size of <c>size_t</c>.</summary>
    internal static int CmsgAlign(int length) => (length + 7) & ~7;

    /// <summary><c>CMSG_SPACE</c> for <paramref name="fdCount"/> file descriptors.</summary>
    internal static int CmsgSpaceForFds(int fdCount) => CmsgHeaderSize + CmsgAlign(fdCount * sizeof(int));
}
