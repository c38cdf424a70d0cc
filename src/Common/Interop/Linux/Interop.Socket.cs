using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary><c>AF_UNIX</c>.</summary>
        internal const int AfUnix = 1;

        /// <summary><c>SOCK_STREAM</c>.</summary>
        internal const int SockStream = 1;

        /// <summary><c>SOCK_SEQPACKET</c>.</summary>
        internal const int SockSeqPacket = 5;

        /// <summary><c>SOCK_NONBLOCK</c> (or'ed into the type).</summary>
        internal const int SockNonBlock = 0x800;

        /// <summary><c>SOCK_CLOEXEC</c> (or'ed into the type).</summary>
        internal const int SockCloexec = 0x80000;

        /// <summary><c>socket(2)</c>.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "socket", SetLastError = true)]
        internal static partial int Socket(int domain, int type, int protocol);
    }
}
