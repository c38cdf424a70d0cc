using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary>
        /// <c>mincore(2)</c>: one byte per page of <c>[address, address + length)</c>, bit 0 set when the page is resident.
        /// For a shared file mapping that is the file's page cache (shmem included), whether or not this process has the
        /// page mapped yet.
        /// </summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "mincore", SetLastError = true)]
        internal static unsafe partial int Mincore(nint address, nuint length, byte* vector);
    }
}
