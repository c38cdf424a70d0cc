using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary><c>F_GETFL</c>.</summary>
        internal const int FGetFl = 3;

        /// <summary><c>F_SETFL</c>.</summary>
        internal const int FSetFl = 4;

        /// <summary><c>O_NONBLOCK</c>.</summary>
        internal const int ONonBlock = 0x800;

        /// <summary><c>F_ADD_SEALS</c> (memfd).</summary>
        internal const int FAddSeals = 1033;

        /// <summary><c>F_GET_SEALS</c> (memfd).</summary>
        internal const int FGetSeals = 1034;

        /// <summary><c>F_SEAL_SEAL</c>: no further seals.</summary>
        internal const int FSealSeal = 0x1;

        /// <summary><c>F_SEAL_SHRINK</c>: the file cannot shrink.</summary>
        internal const int FSealShrink = 0x2;

        /// <summary><c>F_SEAL_GROW</c>: the file cannot grow.</summary>
        internal const int FSealGrow = 0x4;

        /// <summary><c>fcntl(2)</c> with an integer argument.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "fcntl", SetLastError = true)]
        internal static partial int Fcntl(int fd, int command, int argument);
    }
}
