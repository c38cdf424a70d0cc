using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary><c>EPOLL_CLOEXEC</c>.</summary>
        internal const int EpollCloexec = 0x80000;

        /// <summary><c>EPOLL_CTL_ADD</c>.</summary>
        internal const int EpollCtlAdd = 1;

        /// <summary><c>EPOLL_CTL_DEL</c>.</summary>
        internal const int EpollCtlDel = 2;

        /// <summary><c>EPOLL_CTL_MOD</c>.</summary>
        internal const int EpollCtlMod = 3;

        /// <summary><c>EPOLLIN</c>.</summary>
        internal const uint EpollIn = 0x001;

        /// <summary><c>EPOLLOUT</c>.</summary>
        internal const uint EpollOut = 0x004;

        /// <summary><c>EPOLLERR</c>.</summary>
        internal const uint EpollErr = 0x008;

        /// <summary><c>EPOLLHUP</c>.</summary>
        internal const uint EpollHup = 0x010;

        /// <summary><c>EPOLLRDHUP</c>.</summary>
        internal const uint EpollRdHup = 0x2000;

        /// <summary><c>EPOLLONESHOT</c>.</summary>
        internal const uint EpollOneShot = 1u << 30;

        /// <summary><c>EPOLLET</c>.</summary>
        internal const uint EpollEdgeTriggered = 1u << 31;

        /// <summary><c>epoll_create1(2)</c>.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "epoll_create1", SetLastError = true)]
        internal static partial int EpollCreate1(int flags);

        /// <summary><c>epoll_ctl(2)</c>; <paramref name="ev"/> may be null for <see cref="EpollCtlDel"/>.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "epoll_ctl", SetLastError = true)]
        internal static unsafe partial int EpollCtl(int epfd, int op, int fd, EpollEvent* ev);

        /// <summary><c>epoll_wait(2)</c>.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "epoll_wait", SetLastError = true)]
        internal static unsafe partial int EpollWait(int epfd, EpollEvent* events, int maxEvents, int timeoutMilliseconds);

        /// <summary>
        /// <c>struct epoll_event</c>. The kernel packs it on x86-64 (12 bytes, data at offset 4) and not on
        /// arm64 (16 bytes, data at offset 8); this layout is the x86-64 one, and <see cref="EpollEvent.IsSupported"/>
        /// says whether the process runs there. Callers on other architectures must not use it.
        /// </summary>
        [StructLayout(LayoutKind.Sequential, Pack = 4)]
        internal struct EpollEvent
        {
            /// <summary>The event mask (<c>EPOLLIN</c>, ...).</summary>
            public uint Events;

            /// <summary>The caller's 64-bit token.</summary>
            public ulong Data;

            /// <summary>Whether this layout matches the kernel's on this process's architecture.</summary>
            internal static bool IsSupported => RuntimeInformation.ProcessArchitecture == Architecture.X64;
        }
    }
}
