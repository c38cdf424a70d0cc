using System.Runtime.InteropServices;

namespace Vhost.User.Interop;

/// <summary><c>struct msghdr</c> of 64-bit Linux (glibc and musl agree on this layout).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct MsgHdr
{
    internal void* Name;
    internal uint NameLength;
    internal IoVec* Iov;
    internal nuint IovLength;
    internal void* Control;
    internal nuint ControlLength;
    internal int Flags;
}
