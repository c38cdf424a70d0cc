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

        /// <summary><c>epoll_ctl(2)</c> over a raw <c>struct epoll_event</c> (see <see cref="EpollEventSize"/>); null for <see cref="EpollCtlDel"/>.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "epoll_ctl", SetLastError = true)]
        internal static unsafe partial int EpollCtl(int epfd, int op, int fd, byte* ev);

        /// <summary><c>epoll_wait(2)</c> into <paramref name="maxEvents"/> raw events of <see cref="EpollEventSize"/> bytes.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "epoll_wait", SetLastError = true)]
        internal static unsafe partial int EpollWait(int epfd, byte* events, int maxEvents, int timeoutMilliseconds);

        /// <summary>
        /// Bytes of <c>struct epoll_event</c>: the kernel packs it on x86-64 (12 bytes, data at offset 4) and not on
        /// arm64 (16 bytes, data at offset 8), so the stack reads and writes it through these offsets.
        /// </summary>
        internal static readonly int EpollEventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;

        /// <summary>Offset of <c>epoll_event.data</c> (see <see cref="EpollEventSize"/>).</summary>
        internal static readonly int EpollDataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

        /// <summary><c>epoll_ctl</c> with the event mask and token written in the kernel's layout.</summary>
        /// <returns>0, or the errno.</returns>
        internal static unsafe int EpollControl(int epfd, int op, int fd, uint events, ulong data)
        {
            byte* ev = stackalloc byte[16];
            *(uint*)ev = events;
            *(ulong*)(ev + EpollDataOffset) = data;
            return EpollCtl(epfd, op, fd, ev) == 0 ? 0 : Marshal.GetLastPInvokeError();
        }

        /// <summary>The event mask of the <paramref name="index"/>th raw event.</summary>
        internal static unsafe uint EpollEvents(byte* events, int index) => *(uint*)(events + (index * EpollEventSize));

        /// <summary>The token of the <paramref name="index"/>th raw event.</summary>
        internal static unsafe ulong EpollData(byte* events, int index) => *(ulong*)(events + (index * EpollEventSize) + EpollDataOffset);
    }
}
