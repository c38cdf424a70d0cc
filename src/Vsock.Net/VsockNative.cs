using System.Runtime.InteropServices;

namespace Vsock.Net;

/// <summary>
/// The Linux calls the runtime does not make for an address family it does not know:
/// <c>socket(AF_VSOCK)</c>, <c>open</c>/<c>ioctl</c> (the local CID) and <c>close</c>.
/// Owns the constants (x86-64 and arm64 Linux values). Never used on a descriptor it does not own.
/// </summary>
internal static unsafe partial class VsockNative
{
    internal const int SockCloexec = 0x80000;
    internal const int ORdOnly = 0;
    internal const int OCloexec = 0x80000;
    internal const uint IoctlGetLocalCid = 0x7b9; // _IO(7, 0xb9)

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    internal static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int Ioctl(int fd, nuint request, uint* value);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);
}
