using System.Runtime.InteropServices;

namespace Vhost.User;

/// <summary>
/// Byte-exact reads and writes on a connected Unix stream socket, with SCM_RIGHTS descriptors collected
/// from every read. Waits in <c>poll</c> on the socket and a stop eventfd, so another thread can end a
/// blocked read at any time through <see cref="RequestStop"/>; works whether the socket is blocking or not.
/// Owns its stop eventfd and a reference on the socket (not the socket itself); must never interpret the bytes
/// (<see cref="MessageChannel"/> frames them) nor keep a received descriptor beyond the caller's limit.
/// </summary>
internal sealed unsafe class SocketChannel : IDisposable
{
    /// <summary>Room for this many descriptors per recvmsg; more are truncated by the kernel (and closed by it).</summary>
    internal const int MaxFdsPerRead = 32;

    private readonly SafeHandle _socket;
    private readonly SafeFileDescriptor _stop;
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
    internal ChannelStatus ReceiveExact(Span<byte> destination, List<SafeFileDescriptor?> fds, int maxFds, ref bool fdsDropped)
    {
        int control = ScmRights.SpaceFor(MaxFdsPerRead);
        byte* controlBuffer = stackalloc byte[control];
        int offset = 0;
        while (offset < destination.Length)
        {
            nint received;
            int flags;
            fixed (byte* data = &destination[offset])
            {
                Interop.Sys.IoVec iov = new() { Base = data, Length = (nuint)(destination.Length - offset) };
                Interop.Sys.MsgHdr message = new()
                {
                    Iov = &iov,
                    IovLength = 1,
                    Control = controlBuffer,
                    ControlLength = (nuint)control,
                };
                received = Interop.Sys.RecvMsg(_fd, &message, Interop.Sys.MsgDontWait | Interop.Sys.MsgCmsgCloexec);
                flags = message.Flags;
                if (received >= 0)
                {
                    CollectFds(controlBuffer, (int)Math.Min(message.ControlLength, (nuint)control), fds, maxFds, ref fdsDropped);
                }
            }

            if (received > 0)
            {
                if ((flags & Interop.Sys.MsgCtrunc) != 0)
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
            if (errno == Interop.Errors.EINTR)
            {
                continue;
            }

            if (errno != Interop.Errors.EAGAIN)
            {
                LastErrno = errno;
                return ChannelStatus.Failed;
            }

            ChannelStatus wait = Wait(Interop.Sys.PollIn);
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
                Interop.Sys.IoVec iov = new() { Base = pointer, Length = (nuint)(data.Length - offset) };
                Interop.Sys.MsgHdr message = new() { Iov = &iov, IovLength = 1 };
                sent = Interop.Sys.SendMsg(_fd, &message, Interop.Sys.MsgDontWait | Interop.Sys.MsgNoSignal);
            }

            if (sent > 0)
            {
                offset += (int)sent;
                continue;
            }

            int errno = sent < 0 ? Marshal.GetLastPInvokeError() : Interop.Errors.EAGAIN;
            if (errno == Interop.Errors.EINTR)
            {
                continue;
            }

            if (errno != Interop.Errors.EAGAIN)
            {
                LastErrno = errno;
                return ChannelStatus.Failed;
            }

            ChannelStatus wait = Wait(Interop.Sys.PollOut);
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
            return Interop.Errors.EINVAL; // Descriptors need at least one byte to travel with.
        }

        int control = fds.IsEmpty ? 0 : ScmRights.SpaceFor(fds.Length);
        byte* controlBuffer = stackalloc byte[Math.Max(control, 1)];
        if (control > 0)
        {
            ScmRights.Write(new Span<byte>(controlBuffer, control), fds);
        }

        int offset = 0;
        while (offset < data.Length)
        {
            nint sent;
            fixed (byte* pointer = data)
            {
                Interop.Sys.IoVec iov = new() { Base = pointer + offset, Length = (nuint)(data.Length - offset) };
                Interop.Sys.MsgHdr message = new()
                {
                    Iov = &iov,
                    IovLength = 1,
                    Control = offset == 0 && control > 0 ? controlBuffer : null,
                    ControlLength = offset == 0 ? (nuint)control : 0,
                };
                sent = Interop.Sys.SendMsg(socket, &message, Interop.Sys.MsgNoSignal);
            }

            if (sent < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Interop.Errors.EINTR)
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

    private static void CollectFds(byte* control, int length, List<SafeFileDescriptor?> fds, int maxFds, ref bool fdsDropped)
    {
        foreach (int received in ScmRights.Received(new ReadOnlySpan<byte>(control, length)))
        {
            SafeFileDescriptor handle = SafeFileDescriptor.Adopt(received);
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

    private ChannelStatus Wait(short events)
    {
        Interop.Sys.PollFd* polls = stackalloc Interop.Sys.PollFd[2];
        polls[0] = new Interop.Sys.PollFd { Fd = _fd, Events = events };
        polls[1] = new Interop.Sys.PollFd { Fd = _stop.Fd, Events = Interop.Sys.PollIn };
        while (true)
        {
            int ready = Interop.Sys.Poll(polls, 2, -1);
            if (ready < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Interop.Errors.EINTR)
                {
                    continue;
                }

                LastErrno = errno;
                return ChannelStatus.Failed;
            }

            if ((polls[1].ReturnedEvents & Interop.Sys.PollIn) != 0)
            {
                return ChannelStatus.Stopped;
            }

            // Readable, writable, or an error/hang-up that the next recvmsg/sendmsg reports precisely.
            return ChannelStatus.Ok;
        }
    }
}
