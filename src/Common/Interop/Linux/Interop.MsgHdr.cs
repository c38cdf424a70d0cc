using System.Runtime.InteropServices;

internal static partial class Interop
{
    internal static partial class Sys
    {
        /// <summary><c>MSG_CTRUNC</c>: control data (descriptors) were truncated by the kernel.</summary>
        internal const int MsgCtrunc = 0x8;

        /// <summary><c>MSG_DONTWAIT</c>: this call does not block.</summary>
        internal const int MsgDontWait = 0x40;

        /// <summary><c>MSG_PEEK</c>: look at the data without taking it.</summary>
        internal const int MsgPeek = 0x2;

        /// <summary><c>MSG_TRUNC</c>: on a datagram or SEQPACKET receive, return the message's real length.</summary>
        internal const int MsgTrunc = 0x20;

        /// <summary><c>MSG_NOSIGNAL</c>: a closed peer gives EPIPE, not SIGPIPE.</summary>
        internal const int MsgNoSignal = 0x4000;

        /// <summary><c>MSG_CMSG_CLOEXEC</c>: descriptors received with SCM_RIGHTS are close-on-exec.</summary>
        internal const int MsgCmsgCloexec = 0x40000000;

        /// <summary><c>struct msghdr</c> of 64-bit Linux (glibc and musl agree on this layout).</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal unsafe struct MsgHdr
        {
            /// <summary>The peer address (unused on connected sockets).</summary>
            public void* Name;

            /// <summary>The size of <see cref="Name"/>.</summary>
            public uint NameLength;

            /// <summary>The scatter/gather list.</summary>
            public IoVec* Iov;

            /// <summary>The number of entries in <see cref="Iov"/>.</summary>
            public nuint IovLength;

            /// <summary>Ancillary data (see <see cref="ScmRights"/>).</summary>
            public void* Control;

            /// <summary>The size of <see cref="Control"/>; on return from recvmsg, the bytes filled.</summary>
            public nuint ControlLength;

            /// <summary>On return from recvmsg, <c>MSG_*</c> flags such as <see cref="MsgCtrunc"/>.</summary>
            public int Flags;
        }
    }
}
