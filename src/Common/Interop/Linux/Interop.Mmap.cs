using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary><c>PROT_READ</c>.</summary>
        internal const int ProtRead = 0x1;

        /// <summary><c>PROT_WRITE</c>.</summary>
        internal const int ProtWrite = 0x2;

        /// <summary><c>MAP_SHARED</c>.</summary>
        internal const int MapShared = 0x01;

        /// <summary><c>MAP_PRIVATE</c>.</summary>
        internal const int MapPrivate = 0x02;

        /// <summary><c>MAP_ANONYMOUS</c>.</summary>
        internal const int MapAnonymous = 0x20;

        /// <summary><c>MAP_NORESERVE</c>.</summary>
        internal const int MapNoReserve = 0x4000;

        /// <summary><c>MAP_FAILED</c>.</summary>
        internal static readonly nint MapFailed = -1;

        /// <summary><c>mmap(2)</c>.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "mmap", SetLastError = true)]
        internal static partial nint Mmap(nint address, nuint length, int protection, int flags, int fd, long offset);

        /// <summary><c>munmap(2)</c>.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "munmap", SetLastError = true)]
        internal static partial int Munmap(nint address, nuint length);
    }
}
