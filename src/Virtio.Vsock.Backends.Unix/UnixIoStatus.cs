namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// The outcome class of one non-blocking operation on a host Unix socket (see
/// <see cref="UnixSocketIo"/>). Owns nothing; must never be derived from an exception on the data
/// path: every value here comes from a return code.
/// </summary>
internal enum UnixIoStatus
{
    /// <summary>The operation succeeded (possibly partially: see <see cref="UnixIoResult.Bytes"/>).</summary>
    Ok = 0,

    /// <summary>Nothing could be done now without blocking (EAGAIN); wait for readiness and retry.</summary>
    WouldBlock = 1,

    /// <summary>
    /// Receive side: the peer shut down sending (<c>shutdown(SHUT_WR)</c>) or closed in order, and
    /// every byte it sent has been read. The socket may still be writable (half-close).
    /// </summary>
    EndOfStream = 2,

    /// <summary>The peer reset the connection (ECONNRESET), e.g. closed with unread data.</summary>
    Reset = 3,

    /// <summary>
    /// Send side: the peer closed or shut down receiving (EPIPE), nothing more can be sent.
    /// </summary>
    PeerClosed = 4,

    /// <summary>A SOCK_SEQPACKET message is larger than the socket can ever send (EMSGSIZE).</summary>
    MessageTooLarge = 5,

    /// <summary>The <see cref="System.Net.Sockets.Socket"/> was already disposed.</summary>
    SocketClosed = 6,

    /// <summary>An awaited operation was canceled by its token.</summary>
    Canceled = 7,

    /// <summary>Any other failure; <see cref="UnixIoResult.Errno"/> names it.</summary>
    Error = 8,
}
