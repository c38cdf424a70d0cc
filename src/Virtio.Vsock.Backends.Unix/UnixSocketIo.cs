using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// Non-blocking data-path operations on host Unix sockets (SOCK_STREAM and SOCK_SEQPACKET) for the
/// connection engine: receive and send (also scatter/gather, so a payload moves between a socket and
/// guest memory with one copy), half-close, end-of-stream versus reset, and SOCK_SEQPACKET message
/// boundaries with the full message length and truncation. Owns no state and no socket.
/// It must never block (every call passes <c>MSG_DONTWAIT</c>, whatever the socket's blocking mode),
/// never raise SIGPIPE (<c>MSG_NOSIGNAL</c>), never throw or allocate on the synchronous calls
/// (failures are <see cref="UnixIoResult"/> values), and never keep a file descriptor a peer passes
/// with SCM_RIGHTS (any that arrive are closed).
/// </summary>
/// <remarks>
/// <para>Mapping for the engine:</para>
/// <list type="bullet">
/// <item>Host peer half-close: a receive returns <see cref="UnixIoStatus.EndOfStream"/> (the peer
/// called <c>shutdown(SHUT_WR)</c> or closed); send the guest SHUTDOWN(SEND) and keep sending the
/// guest's data to the socket until a send returns <see cref="UnixIoStatus.PeerClosed"/>.</item>
/// <item>Host peer reset: <see cref="UnixIoStatus.Reset"/> (the peer closed with unread data), or a
/// send's <see cref="UnixIoStatus.PeerClosed"/>: send the guest RST.</item>
/// <item>Guest SHUTDOWN(SEND): <see cref="ShutdownSend"/>; the host peer reads end of stream and can
/// still send.</item>
/// <item>SOCK_SEQPACKET host to guest: <see cref="PeekMessage"/> tells the next message's length
/// without consuming it, so the engine can wait until the guest's credit and RX buffers hold it, then
/// <see cref="ReceiveMessage(Socket, ReadOnlySpan{UnixIoSegment})"/> takes it in one call into several
/// buffers; the engine splits it into RW packets and sets EOM (and EOR) on the last.</item>
/// <item>SOCK_SEQPACKET guest to host: collect RW payloads up to EOM, then one
/// <see cref="SendMessage(Socket, ReadOnlySpan{UnixIoSegment})"/> (atomic: all or nothing).</item>
/// <item>Waiting: the device loop watches the socket (<see cref="IVsockFdPoller"/>, edge-triggered epoll) and
/// gives one-shot readable / writable callbacks (the runtime exposes no write readiness).</item>
/// </list>
/// <para>Zero-length SOCK_SEQPACKET messages and end of stream both make <c>recvmsg</c> return 0;
/// they are told apart only on sockets prepared with <see cref="ConfigureForDataPath"/> (which turns
/// on SO_PASSCRED, so every real message carries a credentials control message). Without it a
/// zero-length message reads as <see cref="UnixIoStatus.EndOfStream"/>.</para>
/// </remarks>
internal static class UnixSocketIo
{
    /// <summary>The most segments one scatter/gather call accepts.</summary>
    public const int MaxSegments = 64;

    // CMSG_SPACE(sizeof(struct ucred)): room for the credentials and nothing else, so a peer's
    // SCM_RIGHTS never fits (the kernel then discards those descriptors instead of installing them).
    private const int ControlLength = 32;

    /// <summary>
    /// Prepares a connected socket for the data path: non-blocking mode, and for SOCK_SEQPACKET
    /// SO_PASSCRED (so zero-length messages are distinguishable from end of stream).
    /// </summary>
    /// <param name="socket">A connected Unix socket.</param>
    /// <returns>Ok, or why it failed (the socket is then unusable).</returns>
    public static unsafe UnixIoResult ConfigureForDataPath(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (!Interop.IsSupported)
        {
            return UnixIoResult.Failure(UnixIoStatus.Error, Interop.Errors.ENOSYS);
        }

        try
        {
            socket.Blocking = false;
            if (socket.SocketType == SocketType.Seqpacket)
            {
                int one = 1;
                socket.SetRawSocketOption(Interop.Sys.SolSocket, Interop.Sys.SoPassCred, new ReadOnlySpan<byte>(&one, sizeof(int)));
            }

            return UnixIoResult.Success(0);
        }
        catch (ObjectDisposedException)
        {
            return UnixIoResult.Failure(UnixIoStatus.SocketClosed, 0);
        }
        catch (SocketException e)
        {
            return UnixIoResult.FromErrno(e.NativeErrorCode is > 0 and < 4096 ? e.NativeErrorCode : Interop.Errors.EINVAL);
        }
    }

    /// <summary>
    /// Receives stream bytes into <paramref name="destination"/> without blocking. Use on
    /// SOCK_STREAM sockets; on SOCK_SEQPACKET use <see cref="ReceiveMessage(Socket, Span{byte})"/>.
    /// </summary>
    /// <param name="socket">A connected socket.</param>
    /// <param name="destination">Where the bytes go; an empty span reads nothing and returns Ok(0).</param>
    /// <returns>Ok with the byte count (&gt; 0), WouldBlock, EndOfStream, Reset, or another failure.</returns>
    public static unsafe UnixIoResult Receive(Socket socket, Span<byte> destination)
    {
        if (destination.IsEmpty)
        {
            return UnixIoResult.Success(0);
        }

        fixed (byte* p = destination)
        {
            Interop.Sys.IoVec iov = new() { Base = p, Length = (nuint)destination.Length };
            return ReceiveCore(socket, &iov, 1, peek: false, message: false);
        }
    }

    /// <summary>
    /// Receives stream bytes into several buffers with one system call, without blocking.
    /// </summary>
    /// <param name="socket">A connected SOCK_STREAM socket.</param>
    /// <param name="destination">Up to <see cref="MaxSegments"/> buffers, filled in order.</param>
    /// <returns>As <see cref="Receive(Socket, Span{byte})"/>; more than <see cref="MaxSegments"/> segments is an EINVAL error.</returns>
    public static unsafe UnixIoResult Receive(Socket socket, ReadOnlySpan<UnixIoSegment> destination)
    {
        if (destination.Length > MaxSegments)
        {
            return UnixIoResult.Failure(UnixIoStatus.Error, Interop.Errors.EINVAL);
        }

        Interop.Sys.IoVec* iov = stackalloc Interop.Sys.IoVec[Math.Max(destination.Length, 1)];
        long total = Fill(iov, destination);
        if (total == 0)
        {
            return UnixIoResult.Success(0);
        }

        return ReceiveCore(socket, iov, destination.Length, peek: false, message: false);
    }

    /// <summary>
    /// Tells the length of the next SOCK_SEQPACKET message without consuming it
    /// (<c>MSG_PEEK | MSG_TRUNC</c>).
    /// </summary>
    /// <param name="socket">A connected SOCK_SEQPACKET socket.</param>
    /// <returns>
    /// Ok with <see cref="UnixIoResult.MessageLength"/> (0 for an empty message; <see cref="UnixIoResult.Bytes"/>
    /// is 0 and <see cref="UnixIoResult.Truncated"/> set for a non-empty one, nothing is lost), WouldBlock,
    /// EndOfStream, Reset, or another failure.
    /// </returns>
    public static unsafe UnixIoResult PeekMessage(Socket socket) => ReceiveCore(socket, null, 0, peek: true, message: true);

    /// <summary>
    /// Receives exactly one SOCK_SEQPACKET message, or its first <paramref name="destination"/>
    /// bytes (the rest is then discarded by the kernel and <see cref="UnixIoResult.Truncated"/> is
    /// set; peek first to avoid that).
    /// </summary>
    /// <param name="socket">A connected SOCK_SEQPACKET socket.</param>
    /// <param name="destination">Where the message goes.</param>
    /// <returns>Ok with <see cref="UnixIoResult.Bytes"/> and <see cref="UnixIoResult.MessageLength"/>, WouldBlock, EndOfStream, Reset, or another failure.</returns>
    public static unsafe UnixIoResult ReceiveMessage(Socket socket, Span<byte> destination)
    {
        fixed (byte* p = destination)
        {
            Interop.Sys.IoVec iov = new() { Base = p, Length = (nuint)destination.Length };
            return ReceiveCore(socket, &iov, 1, peek: false, message: true);
        }
    }

    /// <summary>
    /// Receives exactly one SOCK_SEQPACKET message into several buffers with one system call.
    /// </summary>
    /// <param name="socket">A connected SOCK_SEQPACKET socket.</param>
    /// <param name="destination">Up to <see cref="MaxSegments"/> buffers, filled in order.</param>
    /// <returns>As <see cref="ReceiveMessage(Socket, Span{byte})"/>.</returns>
    public static unsafe UnixIoResult ReceiveMessage(Socket socket, ReadOnlySpan<UnixIoSegment> destination)
    {
        if (destination.Length > MaxSegments)
        {
            return UnixIoResult.Failure(UnixIoStatus.Error, Interop.Errors.EINVAL);
        }

        Interop.Sys.IoVec* iov = stackalloc Interop.Sys.IoVec[Math.Max(destination.Length, 1)];
        Fill(iov, destination);
        return ReceiveCore(socket, iov, destination.Length, peek: false, message: true);
    }

    /// <summary>Sends stream bytes without blocking; may send only part of them.</summary>
    /// <param name="socket">A connected SOCK_STREAM socket.</param>
    /// <param name="source">The bytes; an empty span sends nothing and returns Ok(0).</param>
    /// <returns>Ok with the bytes sent (possibly fewer than given), WouldBlock, PeerClosed, Reset, or another failure.</returns>
    public static unsafe UnixIoResult Send(Socket socket, ReadOnlySpan<byte> source)
    {
        if (source.IsEmpty)
        {
            return UnixIoResult.Success(0);
        }

        fixed (byte* p = source)
        {
            Interop.Sys.IoVec iov = new() { Base = p, Length = (nuint)source.Length };
            return SendCore(socket, &iov, 1);
        }
    }

    /// <summary>Sends stream bytes from several buffers with one system call, without blocking.</summary>
    /// <param name="socket">A connected SOCK_STREAM socket.</param>
    /// <param name="source">Up to <see cref="MaxSegments"/> buffers, sent in order.</param>
    /// <returns>As <see cref="Send(Socket, ReadOnlySpan{byte})"/>.</returns>
    public static unsafe UnixIoResult Send(Socket socket, ReadOnlySpan<UnixIoSegment> source)
    {
        if (source.Length > MaxSegments)
        {
            return UnixIoResult.Failure(UnixIoStatus.Error, Interop.Errors.EINVAL);
        }

        Interop.Sys.IoVec* iov = stackalloc Interop.Sys.IoVec[Math.Max(source.Length, 1)];
        if (Fill(iov, source) == 0)
        {
            return UnixIoResult.Success(0);
        }

        return SendCore(socket, iov, source.Length);
    }

    /// <summary>
    /// Sends one SOCK_SEQPACKET message, atomically: all of it or nothing (WouldBlock when the
    /// peer's queue is full, MessageTooLarge above the socket's send buffer size). An empty span
    /// sends an empty message.
    /// </summary>
    /// <param name="socket">A connected SOCK_SEQPACKET socket.</param>
    /// <param name="message">The message.</param>
    /// <returns>Ok with the message length, WouldBlock, MessageTooLarge, PeerClosed, or another failure.</returns>
    public static unsafe UnixIoResult SendMessage(Socket socket, ReadOnlySpan<byte> message)
    {
        fixed (byte* p = message)
        {
            Interop.Sys.IoVec iov = new() { Base = p, Length = (nuint)message.Length };
            return SendCore(socket, &iov, 1);
        }
    }

    /// <summary>Sends one SOCK_SEQPACKET message gathered from several buffers, atomically.</summary>
    /// <param name="socket">A connected SOCK_SEQPACKET socket.</param>
    /// <param name="message">Up to <see cref="MaxSegments"/> buffers forming the message, in order.</param>
    /// <returns>As <see cref="SendMessage(Socket, ReadOnlySpan{byte})"/>.</returns>
    public static unsafe UnixIoResult SendMessage(Socket socket, ReadOnlySpan<UnixIoSegment> message)
    {
        if (message.Length > MaxSegments)
        {
            return UnixIoResult.Failure(UnixIoStatus.Error, Interop.Errors.EINVAL);
        }

        Interop.Sys.IoVec* iov = stackalloc Interop.Sys.IoVec[Math.Max(message.Length, 1)];
        Fill(iov, message);
        return SendCore(socket, iov, message.Length);
    }

    /// <summary>
    /// Half-closes the sending direction (<c>shutdown(SHUT_WR)</c>): the peer reads end of stream
    /// after the bytes already sent, and can still send to us. Idempotent.
    /// </summary>
    /// <param name="socket">A connected socket.</param>
    /// <returns>Ok, or why it failed (ENOTCONN once the peer is fully gone is reported as PeerClosed).</returns>
    public static UnixIoResult ShutdownSend(Socket socket) => ShutdownCore(socket, Interop.Sys.ShutWrite);

    /// <summary>
    /// Half-closes the receiving direction (<c>shutdown(SHUT_RD)</c>): the peer's further sends
    /// fail with EPIPE. Idempotent.
    /// </summary>
    /// <param name="socket">A connected socket.</param>
    /// <returns>Ok, or why it failed.</returns>
    public static UnixIoResult ShutdownReceive(Socket socket) => ShutdownCore(socket, Interop.Sys.ShutRead);

    private static unsafe long Fill(Interop.Sys.IoVec* iov, ReadOnlySpan<UnixIoSegment> segments)
    {
        long total = 0;
        for (int i = 0; i < segments.Length; i++)
        {
            iov[i].Base = (void*)segments[i].Address;
            iov[i].Length = (nuint)segments[i].Length;
            total += segments[i].Length;
        }

        return total;
    }

    private static bool TryEnter(Socket socket, out SafeHandle handle, out UnixIoResult failure)
    {
        handle = socket.SafeHandle;
        failure = default;
        if (!Interop.IsSupported)
        {
            failure = UnixIoResult.Failure(UnixIoStatus.Error, Interop.Errors.ENOSYS);
            return false;
        }

        if (handle.IsClosed || handle.IsInvalid)
        {
            failure = UnixIoResult.Failure(UnixIoStatus.SocketClosed, 0);
            return false;
        }

        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
        }
        catch (ObjectDisposedException)
        {
            // Lost a race with Dispose; rare, so the throw is acceptable here.
        }

        if (!added)
        {
            failure = UnixIoResult.Failure(UnixIoStatus.SocketClosed, 0);
            return false;
        }

        return true;
    }

    private static unsafe UnixIoResult ReceiveCore(Socket socket, Interop.Sys.IoVec* iov, int iovCount, bool peek, bool message)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (!TryEnter(socket, out SafeHandle handle, out UnixIoResult failure))
        {
            return failure;
        }

        try
        {
            nint fd = handle.DangerousGetHandle();
            byte* control = stackalloc byte[ControlLength];
            Interop.Sys.MsgHdr header = new()
            {
                Iov = iov,
                IovLength = (nuint)iovCount,
                Control = message ? control : null,
                ControlLength = message ? (nuint)ControlLength : 0,
            };
            // MSG_CMSG_CLOEXEC: a descriptor a host peer smuggles in is close-on-exec from the start (and closed below).
            int flags = Interop.Sys.MsgDontWait | Interop.Sys.MsgCmsgCloexec | (message ? Interop.Sys.MsgTrunc : 0) | (peek ? Interop.Sys.MsgPeek : 0);
            nint n;
            do
            {
                n = Interop.Sys.RecvMsg((int)fd, &header, flags);
            }
            while (n < 0 && Marshal.GetLastPInvokeError() == Interop.Errors.EINTR);

            if (n < 0)
            {
                return UnixIoResult.FromErrno(Marshal.GetLastPInvokeError());
            }

            bool hadControl = message && header.ControlLength > 0;
            if (hadControl)
            {
                CloseReceivedDescriptors(control, (int)Math.Min(header.ControlLength, ControlLength));
            }

            if (!message)
            {
                return n == 0 ? UnixIoResult.Failure(UnixIoStatus.EndOfStream, 0) : UnixIoResult.Success((int)n);
            }

            // MSG_TRUNC in the flags makes recvmsg return the real message length.
            if (n == 0 && !hadControl)
            {
                return UnixIoResult.Failure(UnixIoStatus.EndOfStream, 0);
            }

            long capacity = 0;
            for (int i = 0; i < iovCount; i++)
            {
                capacity += (long)iov[i].Length;
            }

            int length = (int)n;
            int copied = (int)Math.Min(n, capacity);
            return new UnixIoResult(UnixIoStatus.Ok, copied, length, length > copied, 0);
        }
        finally
        {
            handle.DangerousRelease();
        }
    }

    private static unsafe void CloseReceivedDescriptors(byte* control, int length)
    {
        foreach (int fd in ScmRights.Received(new ReadOnlySpan<byte>(control, length)))
        {
            Interop.Sys.Close(fd);
        }
    }

    private static unsafe UnixIoResult SendCore(Socket socket, Interop.Sys.IoVec* iov, int iovCount)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (!TryEnter(socket, out SafeHandle handle, out UnixIoResult failure))
        {
            return failure;
        }

        try
        {
            nint fd = handle.DangerousGetHandle();
            Interop.Sys.MsgHdr header = new() { Iov = iov, IovLength = (nuint)iovCount };
            nint n;
            do
            {
                n = Interop.Sys.SendMsg((int)fd, &header, Interop.Sys.MsgDontWait | Interop.Sys.MsgNoSignal);
            }
            while (n < 0 && Marshal.GetLastPInvokeError() == Interop.Errors.EINTR);

            return n < 0 ? UnixIoResult.FromErrno(Marshal.GetLastPInvokeError()) : UnixIoResult.Success((int)n);
        }
        finally
        {
            handle.DangerousRelease();
        }
    }

    private static UnixIoResult ShutdownCore(Socket socket, int how)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (!TryEnter(socket, out SafeHandle handle, out UnixIoResult failure))
        {
            return failure;
        }

        try
        {
            if (Interop.Sys.Shutdown((int)handle.DangerousGetHandle(), how) == 0)
            {
                return UnixIoResult.Success(0);
            }

            int errno = Marshal.GetLastPInvokeError();
            return errno == Interop.Errors.ENOTCONN
                ? UnixIoResult.Failure(UnixIoStatus.PeerClosed, errno)
                : UnixIoResult.FromErrno(errno);
        }
        finally
        {
            handle.DangerousRelease();
        }
    }
}
