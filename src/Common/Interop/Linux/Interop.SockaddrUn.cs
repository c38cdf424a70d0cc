using System.Runtime.InteropServices;
using System.Text;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary><c>struct sockaddr_un</c>: the family and a NUL-terminated path of at most 107 bytes.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal unsafe struct SockaddrUn
        {
            /// <summary>The longest path, in UTF-8 bytes, that fits with its terminating NUL.</summary>
            internal const int MaxPathBytes = 107;

            /// <summary><see cref="AfUnix"/>.</summary>
            public ushort Family;

            /// <summary>The path bytes.</summary>
            public fixed byte Path[108];

            /// <summary>The address of a filesystem socket at <paramref name="path"/>.</summary>
            /// <param name="path">The socket path.</param>
            /// <param name="address">The address.</param>
            /// <param name="length">The length to pass to bind or connect (family, path, NUL).</param>
            /// <returns>False when the path is empty, holds a NUL or is longer than <see cref="MaxPathBytes"/>.</returns>
            internal static bool TryCreate(string path, out SockaddrUn address, out uint length)
            {
                address = default;
                length = 0;
                if (string.IsNullOrEmpty(path) || path.Contains('\0', StringComparison.Ordinal)
                    || Encoding.UTF8.GetByteCount(path) > MaxPathBytes)
                {
                    return false;
                }

                address.Family = AfUnix;
                fixed (byte* bytes = address.Path)
                {
                    int written = Encoding.UTF8.GetBytes(path, new Span<byte>(bytes, MaxPathBytes));
                    length = (uint)(sizeof(ushort) + written + 1);
                }

                return true;
            }
        }
    }
}
