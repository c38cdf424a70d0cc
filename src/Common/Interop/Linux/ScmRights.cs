/// <summary>
/// Writes and reads <c>SCM_RIGHTS</c> control messages (descriptors passed over a Unix socket) in the ancillary
/// data of <see cref="Interop.Sys.MsgHdr"/>, with the 64-bit Linux <c>struct cmsghdr</c> layout (16-byte header:
/// length, level, type). Owns no descriptor: the parser yields the numbers and the caller adopts or closes each
/// one (every one it yields is open in this process and must be closed by someone). Never reads past the length
/// the kernel reported. Fields are in host byte order, as the kernel writes them.
/// </summary>
internal static unsafe class ScmRights
{
    /// <summary><c>SOL_SOCKET</c>.</summary>
    internal const int SolSocket = 1;

    /// <summary><c>SCM_RIGHTS</c>.</summary>
    internal const int Type = 1;

    /// <summary>Size of <c>struct cmsghdr</c> on 64-bit Linux (<c>CMSG_LEN(0)</c>).</summary>
    internal const int HeaderSize = 16;

    /// <summary><c>CMSG_ALIGN</c>: rounds up to the size of <c>size_t</c>.</summary>
    /// <param name="length">A length in bytes.</param>
    /// <returns>The aligned length.</returns>
    internal static int Align(int length) => (length + 7) & ~7;

    /// <summary><c>CMSG_SPACE</c> for <paramref name="fdCount"/> descriptors: the control buffer size to send or receive them.</summary>
    /// <param name="fdCount">The number of descriptors.</param>
    /// <returns>The size in bytes.</returns>
    internal static int SpaceFor(int fdCount) => HeaderSize + Align(fdCount * sizeof(int));

    /// <summary>Writes one <c>SCM_RIGHTS</c> message carrying <paramref name="fds"/> at the start of <paramref name="control"/>.</summary>
    /// <param name="control">At least <see cref="SpaceFor"/> bytes; the padding is zeroed.</param>
    /// <param name="fds">The descriptors (not empty).</param>
    /// <returns>The control length to put in <see cref="Interop.Sys.MsgHdr.ControlLength"/>.</returns>
    internal static int Write(Span<byte> control, ReadOnlySpan<int> fds)
    {
        int space = SpaceFor(fds.Length);
        Span<byte> message = control[..space];
        message.Clear();
        fixed (byte* pointer = message)
        {
            *(nuint*)pointer = (nuint)(HeaderSize + (fds.Length * sizeof(int)));
            *(int*)(pointer + 8) = SolSocket;
            *(int*)(pointer + 12) = Type;
        }

        System.Runtime.InteropServices.MemoryMarshal.AsBytes(fds).CopyTo(message[HeaderSize..]);
        return space;
    }

    /// <summary>The descriptors of every <c>SCM_RIGHTS</c> message in received control data, in order.</summary>
    /// <param name="control">The control buffer, cut to the length recvmsg reported.</param>
    /// <returns>An allocation-free enumerable of descriptor numbers.</returns>
    internal static Enumerator Received(ReadOnlySpan<byte> control) => new(control);

    /// <summary>Walks the control messages; yields each descriptor number of each <c>SCM_RIGHTS</c> message.</summary>
    internal ref struct Enumerator
    {
        private readonly ReadOnlySpan<byte> _control;
        private int _message;
        private int _next;
        private int _end;

        internal Enumerator(ReadOnlySpan<byte> control)
        {
            _control = control;
            _message = -1;
        }

        /// <summary>The current descriptor.</summary>
        public int Current { get; private set; }

        /// <summary>Returns itself (for <c>foreach</c>).</summary>
        /// <returns>This enumerator.</returns>
        public readonly Enumerator GetEnumerator() => this;

        /// <summary>Advances to the next descriptor.</summary>
        /// <returns>False at the end of the control data.</returns>
        public bool MoveNext()
        {
            while (_next + sizeof(int) > _end)
            {
                // Next message: the first one, or the one after the current (aligned).
                int offset = _message < 0 ? 0 : _message + Align(MessageLength(_message));
                if (offset < 0 || offset + HeaderSize > _control.Length)
                {
                    return false;
                }

                int length = MessageLength(offset);
                if (length < HeaderSize)
                {
                    return false;
                }

                _message = offset;
                int level = System.Runtime.InteropServices.MemoryMarshal.Read<int>(_control[(offset + 8)..]);
                int type = System.Runtime.InteropServices.MemoryMarshal.Read<int>(_control[(offset + 12)..]);
                bool rights = level == SolSocket && type == Type;
                _next = offset + HeaderSize;
                _end = rights ? offset + length : _next;
            }

            Current = System.Runtime.InteropServices.MemoryMarshal.Read<int>(_control[_next..]);
            _next += sizeof(int);
            return true;
        }

        /// <summary>The message's <c>cmsg_len</c>, clamped to the bytes actually there.</summary>
        private readonly int MessageLength(int offset)
        {
            ulong length = System.Runtime.InteropServices.MemoryMarshal.Read<ulong>(_control[offset..]);
            return (int)Math.Min(length, (ulong)(_control.Length - offset));
        }
    }
}
