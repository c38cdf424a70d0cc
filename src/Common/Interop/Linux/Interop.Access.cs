using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary><c>X_OK</c>.</summary>
        internal const int ExecuteOk = 1;

        /// <summary><c>W_OK</c>.</summary>
        internal const int WriteOk = 2;

        /// <summary><c>R_OK</c>.</summary>
        internal const int ReadOk = 4;

        /// <summary><c>access(2)</c>.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "access", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int Access(string path, int mode);
    }
}
