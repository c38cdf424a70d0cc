using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary><c>MADV_POPULATE_READ</c> (Linux 5.14): fault the range in, as reads, without returning until done.</summary>
        internal const int MadvPopulateRead = 22;

        /// <summary><c>madvise(2)</c>.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "madvise", SetLastError = true)]
        internal static partial int Madvise(nint address, nuint length, int advice);
    }
}
