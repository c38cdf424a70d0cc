using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary><c>EFD_CLOEXEC</c>.</summary>
        internal const int EfdCloexec = 0x80000;

        /// <summary><c>EFD_NONBLOCK</c>.</summary>
        internal const int EfdNonBlock = 0x800;

        /// <summary><c>eventfd(2)</c>: a 64-bit counter that a <c>write</c> adds to and a <c>read</c> takes.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "eventfd", SetLastError = true)]
        internal static partial int EventFd(uint initialValue, int flags);
    }
}
