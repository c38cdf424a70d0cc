using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary><c>POLLIN</c>.</summary>
        internal const short PollIn = 0x1;

        /// <summary><c>POLLOUT</c>.</summary>
        internal const short PollOut = 0x4;

        /// <summary><c>POLLERR</c>.</summary>
        internal const short PollErr = 0x8;

        /// <summary><c>POLLHUP</c>.</summary>
        internal const short PollHup = 0x10;

        /// <summary><c>POLLNVAL</c>.</summary>
        internal const short PollNval = 0x20;

        /// <summary><c>poll(2)</c>.</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "poll", SetLastError = true)]
        internal static unsafe partial int Poll(PollFd* fds, nuint count, int timeoutMilliseconds);

        /// <summary><c>struct pollfd</c>.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct PollFd
        {
            /// <summary>The descriptor.</summary>
            public int Fd;

            /// <summary>The events asked for.</summary>
            public short Events;

            /// <summary>The events that happened.</summary>
            public short ReturnedEvents;
        }
    }
}
