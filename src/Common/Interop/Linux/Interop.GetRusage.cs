using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary><c>RUSAGE_THREAD</c>: the calling thread's usage.</summary>
        internal const int RusageThread = 1;

        /// <summary><c>getrusage(2)</c>: resource usage of <paramref name="who"/> (<see cref="RusageThread"/>, ...).</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "getrusage", SetLastError = true)]
        internal static unsafe partial int GetRusage(int who, RUsage* usage);

        /// <summary><c>struct rusage</c> (x86-64 and arm64 layout): the two times, then fourteen counters.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal unsafe struct RUsage
        {
            /// <summary><c>ru_utime.tv_sec</c>.</summary>
            public long UserSeconds;

            /// <summary><c>ru_utime.tv_usec</c>.</summary>
            public long UserMicroseconds;

            /// <summary><c>ru_stime.tv_sec</c>.</summary>
            public long SystemSeconds;

            /// <summary><c>ru_stime.tv_usec</c>.</summary>
            public long SystemMicroseconds;

            /// <summary><c>ru_maxrss</c> to <c>ru_nivcsw</c>.</summary>
            public fixed long Counters[14];

            /// <summary><c>ru_minflt</c>: page faults served without I/O.</summary>
            public readonly long MinorFaults => Counters[4];

            /// <summary>User time in seconds.</summary>
            public readonly double User => UserSeconds + (UserMicroseconds / 1e6);

            /// <summary>System (kernel) time in seconds.</summary>
            public readonly double System => SystemSeconds + (SystemMicroseconds / 1e6);
        }
    }
}
