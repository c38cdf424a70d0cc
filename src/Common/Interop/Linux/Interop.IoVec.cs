using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary><c>struct iovec</c>: one contiguous buffer of a scatter/gather list.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal unsafe struct IoVec
        {
            /// <summary>The first byte.</summary>
            public void* Base;

            /// <summary>The length in bytes.</summary>
            public nuint Length;
        }
    }
}
