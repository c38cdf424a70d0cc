namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// Why a host connection to the <see cref="HybridVsockListener"/> was closed before it became a
/// <see cref="HostConnectRequest"/>. Owns nothing; a counter key and callback argument that must
/// never stop the listener from serving other connections.
/// </summary>
internal enum HandshakeFailure
{
    /// <summary>The line is not a valid <c>CONNECT &lt;port&gt;\n</c> (see the <see cref="ConnectCommandError"/> detail).</summary>
    InvalidCommand = 0,

    /// <summary>32 bytes (or a longer SOCK_SEQPACKET message) arrived without a complete line.</summary>
    CommandTooLong = 1,

    /// <summary>The host closed the connection before the <c>\n</c>.</summary>
    EndOfStream = 2,

    /// <summary>The line did not complete within the handshake timeout (slow or silent peer).</summary>
    TimedOut = 3,

    /// <summary>The socket failed (reset, or another error) during the handshake.</summary>
    ConnectionError = 4,

    /// <summary>SOCK_SEQPACKET only: the first message was not exactly one line (bytes after <c>\n</c>, or no <c>\n</c>).</summary>
    MessageNotOneLine = 5,

    /// <summary>The listener was disposed while the handshake was in progress or queued.</summary>
    ListenerStopped = 6,
}
