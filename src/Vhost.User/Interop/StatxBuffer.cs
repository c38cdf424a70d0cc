using System.Runtime.InteropServices;

namespace Vhost.User.Interop;

/// <summary>
/// <c>struct statx</c> (256 bytes, the same layout on every Linux architecture). Only the fields the
/// backend reads are named.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 256)]
internal struct StatxBuffer
{
    [FieldOffset(0)]
    internal uint Mask;

    [FieldOffset(28)]
    internal ushort Mode;

    [FieldOffset(32)]
    internal ulong Inode;

    [FieldOffset(40)]
    internal ulong Size;

    [FieldOffset(136)]
    internal uint DeviceMajor;

    [FieldOffset(140)]
    internal uint DeviceMinor;
}
