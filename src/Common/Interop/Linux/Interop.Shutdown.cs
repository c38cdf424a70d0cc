using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary><c>SHUT_RD</c>.</summary>
        internal const int ShutRead = 0;

        /// <summary><c>SHUT_WR</c>.</summary>
        internal const int ShutWrite = 1;

        /// <summary><c>SHUT_RDWR</c>.</summary>
        internal const int ShutReadWrite = 2;

        /// <summary><c>shutdown(2)</c>.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "shutdown", SetLastError = true)]
        internal static partial int Shutdown(int socket, int how);
    }
}
