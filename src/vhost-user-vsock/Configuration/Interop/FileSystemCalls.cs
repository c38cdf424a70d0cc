using System.Runtime.InteropServices;

namespace VhostUserVsock.Configuration.Interop;

/// <summary>The Linux calls socket-path validation needs that .NET does not offer: statx (file type) and access.</summary>
internal static partial class FileSystemCalls
{
    internal const int AtFdCwd = -100;
    internal const int AtSymlinkNoFollow = 0x100;
    internal const uint StatxType = 0x1;
    internal const int StatxBufferSize = 256;
    internal const int StatxModeOffset = 28;
    internal const int WriteOk = 2;
    internal const int ExecuteOk = 1;
    internal const int ENOENT = 2;
    internal const int ENOTDIR = 20;
    internal const ushort FileTypeMask = 0xF000;
    internal const ushort FileTypeSocket = 0xC000;
    internal const ushort FileTypeDirectory = 0x4000;

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static unsafe partial int Statx(int dirFd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "access", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Access(string path, int mode);
}
