using System.Runtime.InteropServices;

namespace Vhost.User.Interop;

/// <summary>
/// Byte-exact reads and writes on a connected Unix stream socket, with SCM_RIGHTS descriptors collected
/// from every read. Waits in <c>poll</c> on the socket and a stop eventfd, so another thread can end a
/// blocked read at any time through <see cref="RequestStop"/>; works whether the socket is blocking or not.
/// </summary>
internal sealed unsafe class SocketChannel : IDisposable
{
    /// <summary>Room for this many descriptors per recvmsg; more are truncated by the kernel (and closed by it).</summary>
    internal const int MaxFdsPerRead = 32;

    private readonly SafeHandle _socket;
    private readonly FileDescriptorHandle _stop;
    private readonly int _fd;
    private bool _socketReferenced;
    private int _disposed;

    /// <summary>Wraps a connected socket; the caller keeps ownership of <paramref name="socket"/>.</summary>
    internal SocketChannel(SafeHandle socket)
    {
        _stop = Descriptors.Create(nonBlocking: true);
        _socket = socket;
        _socket.DangerousAddRef(ref _socketReferenced);
        _fd = (int)_socket.DangerousGetHandle();
    }

    /// <summary>The errno of the last <see cref="ChannelStatus.Failed"/>.</summary>
    internal int LastErrno { get; private set; }

    /// <summary>Makes the current and every later read or write return <see cref="ChannelStatus.Stopped"/>. Thread-safe.</summary>
    internal void RequestStop()
    {
        if (Volatile.Read(ref _disposed) == 0)
        {
            bool added = false;
            try
            {
                _stop.DangerousAddRef(ref added);
                Descriptors.Signal(_stop.Fd);
            }
            catch (ObjectDisposedException)
            {
                // Already torn down: nothing left to stop.
            }
            finally
            {
                if (added)
                {
                    _stop.DangerousRelease();
                }
            }
        }
    }

    /// <summary>
    /// Reads exactly <c>destination.Length</c> bytes. Descriptors that arrive are appended to
    /// <paramref name="fds"/> up to <paramref name="maxFds"/> in total; the rest are closed at once and
    /// <paramref name="fdsDropped"/> is set (also when the kernel truncated the control data).
    /// </summary>
    internal ChannelStatus ReceiveExact(Span<byte> destination, List<FileDescriptorHandle?> fds, int maxFds, ref bool fdsDropped)
    {
        int control = Libc.CmsgSpaceForFds(MaxFdsPerRead);
        byte* controlBuffer = stackalloc byte[control];
        int offset = 0;
        while (offset < destination.Length)
        {
            nint received;
            int flags;
            fixed (byte* data = &destination[offset])
            {
                IoVec iov = new() { Base = data, Length = (nuint)(destination.Length - offset) };
                MsgHdr message = new()
                {
                    Iov = &iov,
                    IovLength = 1,
                    Control = controlBuffer,
                    ControlLength = (nuint)control,
                };
                received = Libc.RecvMsg(_fd, &message, Libc.MsgDontWait | Libc.MsgCmsgCloexec);
                flags = message.Flags;
                if (received >= 0)
                {
                    CollectFds(controlBuffer, (int)message.ControlLength, fds, maxFds, ref fdsDropped);
                }
            }

            if (received > 0)
            {
                if ((flags & Libc.MsgCtrunc) != 0)
                {
                    fdsDropped = true;
                }

                offset += (int)received;
                continue;
            }

            if (received == 0)
            {
                return ChannelStatus.Closed;
            }

            int errno = Marshal.GetLastPInvokeError();
            if (errno == Libc.EINTR)
            {
                continue;
            }

            if (errno != Libc.EAGAIN)
            {
                LastErrno = errno;
                return ChannelStatus.Failed;
            }

            ChannelStatus wait = Wait(Libc.PollIn);
            if (wait != ChannelStatus.Ok)
            {
                return wait;
            }
        }

        return ChannelStatus.Ok;
    }

    /// <summary>Writes all of <paramref name="data"/> (no descriptors).</summary>
    internal ChannelStatus SendAll(ReadOnlySpan<byte> data)
    {
        int offset = 0;
        while (offset < data.Length)
        {
            nint sent;
            fixed (byte* pointer = &data[offset])
            {
                IoVec iov = new() { Base = pointer, Length = (nuint)(data.Length - offset) };
                MsgHdr message = new() { Iov = &iov, IovLength = 1 };
                sent = Libc.SendMsg(_fd, &message, Libc.MsgDontWait | Libc.MsgNoSignal);
            }

            if (sent > 0)
            {
                offset += (int)sent;
                continue;
            }

            int errno = sent < 0 ? Marshal.GetLastPInvokeError() : Libc.EAGAIN;
            if (errno == Libc.EINTR)
            {
                continue;
            }

            if (errno != Libc.EAGAIN)
            {
                LastErrno = errno;
                return ChannelStatus.Failed;
            }

            ChannelStatus wait = Wait(Libc.PollOut);
            if (wait != ChannelStatus.Ok)
            {
                return wait;
            }
        }

        return ChannelStatus.Ok;
    }

    /// <summary>
    /// Sends <paramref name="data"/> with <paramref name="fds"/> attached as SCM_RIGHTS (descriptors travel
    /// with the first byte). Blocking helper for frontends and tests; <paramref name="data"/> must not be empty.
    /// </summary>
    /// <returns>0 on success, otherwise the errno.</returns>
    internal static int SendWithFds(int socket, ReadOnlySpan<byte> data, ReadOnlySpan<int> fds)
    {
        if (data.IsEmpty)
        {
            return 22; // EINVAL: descriptors need at least one byte to travel with.
        }

        int control = fds.IsEmpty ? 0 : Libc.CmsgSpaceForFds(fds.Length);
        byte* controlBuffer = stackalloc byte[Math.Max(control, 1)];
        new Span<byte>(controlBuffer, Math.Max(control, 1)).Clear();
        if (control > 0)
        {
            *(nuint*)controlBuffer = (nuint)(Libc.CmsgHeaderSize + (fds.Length * sizeof(int)));
            *(int*)(controlBuffer + 8) = Libc.SolSocket;
            *(int*)(controlBuffer + 12) = Libc.ScmRights;
            fds.CopyTo(new Span<int>(controlBuffer + Libc.CmsgHeaderSize, fds.Length));
        }

        int offset = 0;
        while (offset < data.Length)
        {
            nint sent;
            fixed (byte* pointer = data)
            {
                IoVec iov = new() { Base = pointer + offset, Length = (nuint)(data.Length - offset) };
                MsgHdr message = new()
                {
                    Iov = &iov,
                    IovLength = 1,
                    Control = offset == 0 && control > 0 ? controlBuffer : null,
                    ControlLength = offset == 0 ? (nuint)control : 0,
                };
                sent = Libc.SendMsg(socket, &message, Libc.MsgNoSignal);
            }

            if (sent < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Libc.EINTR)
                {
                    continue;
                }

                return errno;
            }

            offset += (int)sent;
        }

        return 0;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _stop.Dispose();
            if (_socketReferenced)
            {
                _socket.DangerousRelease();
                _socketReferenced = false;
            }
        }
    }

    private static void CollectFds(byte* control, int length, List<FileDescriptorHandle?> fds, int maxFds, ref bool fdsDropped)
    {
        int offset = 0;
        while (offset + Libc.CmsgHeaderSize <= length)
        {
            int cmsgLength = (int)Math.Min(*(nuint*)(control + offset), (nuint)(length - offset));
            if (cmsgLength < Libc.CmsgHeaderSize)
            {
                break;
            }

            int level = *(int*)(control + offset + 8);
            int type = *(int*)(control + offset + 12);
            if (level == Libc.SolSocket && type == Libc.ScmRights)
            {
                int count = (cmsgLength - Libc.CmsgHeaderSize) / sizeof(int);
                int* received = (int*)(control + offset + Libc.CmsgHeaderSize);
                for (int i = 0; i < count; i++)
                {
                    FileDescriptorHandle handle = FileDescriptorHandle.Adopt(received[i]);
                    if (fds.Count < maxFds)
                    {
                        fds.Add(handle);
                    }
                    else
                    {
                        handle.Dispose();
                        fdsDropped = true;
                    }
                }
            }

            offset += Libc.CmsgAlign(cmsgLength);
        }
    }

    private ChannelStatus Wait(short events)
    {
        PollFd* polls = stackalloc PollFd[2];
        polls[0] = new PollFd { Fd = _fd, Events = events };
        polls[1] = new PollFd { Fd = _stop.Fd, Events = Libc.PollIn };
        while (true)
        {
            int ready = Libc.Poll(polls, 2, -1);
            if (ready < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Libc.EINTR)
                {
                    continue;
                }

                LastErrno = errno;
                return ChannelStatus.Failed;
            }

            if ((polls[1].ReturnedEvents & Libc.PollIn) != 0)
            {
                return ChannelStatus.Stopped;
            }

            // Readable, writable, or an error/hang-up that the next recvmsg/sendmsg reports precisely.
            return ChannelStatus.Ok;
        }
    }
}
