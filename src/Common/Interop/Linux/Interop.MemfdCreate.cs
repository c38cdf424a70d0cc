using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary><c>MFD_CLOEXEC</c>.</summary>
        internal const uint MfdCloexec = 0x1;

        /// <summary><c>MFD_ALLOW_SEALING</c>.</summary>
        internal const uint MfdAllowSealing = 0x2;

        /// <summary><c>memfd_create(2)</c>.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "memfd_create", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int MemfdCreate(string name, uint flags);
    }
}
