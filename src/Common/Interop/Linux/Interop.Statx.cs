using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary><c>AT_FDCWD</c>: a relative path is relative to the working directory.</summary>
        internal const int AtFdCwd = -100;

        /// <summary><c>AT_SYMLINK_NOFOLLOW</c>: a final symbolic link is examined itself.</summary>
        internal const int AtSymlinkNoFollow = 0x100;

        /// <summary><c>AT_EMPTY_PATH</c>: an empty path examines the descriptor itself.</summary>
        internal const int AtEmptyPath = 0x1000;

        /// <summary><c>STATX_TYPE</c>.</summary>
        internal const uint StatxType = 0x1;

        /// <summary><c>STATX_INO</c>.</summary>
        internal const uint StatxIno = 0x100;

        /// <summary><c>STATX_SIZE</c>.</summary>
        internal const uint StatxSize = 0x200;

        /// <summary><c>S_IFMT</c>: the file-type bits of a mode.</summary>
        internal const ushort SIfMt = 0xF000;

        /// <summary><c>S_IFSOCK</c>.</summary>
        internal const ushort SIfSock = 0xC000;

        /// <summary><c>S_IFREG</c>.</summary>
        internal const ushort SIfReg = 0x8000;

        /// <summary><c>S_IFDIR</c>.</summary>
        internal const ushort SIfDir = 0x4000;

        /// <summary><c>S_IFIFO</c>: a pipe.</summary>
        internal const ushort SIfIfo = 0x1000;

        /// <summary><c>statx(2)</c>; <paramref name="path"/> is passed as UTF-8 (no allocation for short paths).</summary>
        [LibraryImport(Libraries.Libc, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static unsafe partial int Statx(int directoryFd, string path, int flags, uint mask, StatxBuffer* buffer);

        /// <summary>
        /// <c>struct statx</c> (256 bytes, the same layout on every Linux architecture). Only the fields the stack
        /// reads are named.
        /// </summary>
        [StructLayout(LayoutKind.Explicit, Size = 256)]
        internal struct StatxBuffer
        {
            /// <summary>Which fields the kernel filled (<c>STATX_*</c>).</summary>
            [FieldOffset(0)]
            public uint Mask;

            /// <summary>File type and permission bits.</summary>
            [FieldOffset(28)]
            public ushort Mode;

            /// <summary>The inode number.</summary>
            [FieldOffset(32)]
            public ulong Inode;

            /// <summary>The size in bytes.</summary>
            [FieldOffset(40)]
            public ulong Size;

            /// <summary>The major number of the device holding the file.</summary>
            [FieldOffset(136)]
            public uint DeviceMajor;

            /// <summary>The minor number of the device holding the file.</summary>
            [FieldOffset(140)]
            public uint DeviceMinor;

            /// <summary>The file-type bits of <see cref="Mode"/> (<c>S_IF*</c>).</summary>
            public readonly ushort FileType => (ushort)(Mode & SIfMt);
        }
    }
}
