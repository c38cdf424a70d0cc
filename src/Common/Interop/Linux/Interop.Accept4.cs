using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary><c>accept4(2)</c> without the peer's address; <paramref name="flags"/> takes
        /// <see cref="SockNonBlock"/> and <see cref="SockCloexec"/>.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "accept4", SetLastError = true)]
        internal static unsafe partial int Accept4(int socket, void* address, uint* length, int flags);
    }
}
