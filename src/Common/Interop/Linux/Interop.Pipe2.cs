using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary><c>O_CLOEXEC</c>.</summary>
        internal const int OCloexec = 0x80000;

        /// <summary><c>pipe2(2)</c>: <paramref name="fds"/> receives the read end, then the write end.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "pipe2", SetLastError = true)]
        internal static unsafe partial int Pipe2(int* fds, int flags);
    }
}
