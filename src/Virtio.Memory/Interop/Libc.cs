using System.Runtime.InteropServices;

namespace Virtio.Memory.Interop;

/// <summary>
/// The few Linux calls guest memory needs that the runtime does not offer: mmap, munmap,
/// memfd_create and ftruncate. Internal: the public surface is <see cref="GuestRegion"/>.
/// </summary>
internal static partial class Libc
{
    internal const int ProtRead = 0x1;
    internal const int ProtWrite = 0x2;
    internal const int MapShared = 0x01;
    internal const int MapPrivate = 0x02;
    internal const int MapAnonymous = 0x20;
    internal const int MapNoReserve = 0x4000;
    internal const uint MfdCloexec = 0x1;
    internal const uint MfdAllowSealing = 0x2;
    internal const int FAddSeals = 1033;
    internal const int FSealSeal = 0x1;
    internal const int FSealShrink = 0x2;
    internal const int FSealGrow = 0x4;

    internal static readonly nint MapFailed = -1;

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    internal static partial nint Mmap(nint address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    internal static partial int Munmap(nint address, nuint length);

    [LibraryImport("libc", EntryPoint = "memfd_create", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int MemfdCreate(string name, uint flags);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    internal static partial int Fcntl(int fd, int command, int argument);

    [LibraryImport("libc", EntryPoint = "ftruncate", SetLastError = true)]
    internal static partial int Ftruncate(int fd, long length);
}
