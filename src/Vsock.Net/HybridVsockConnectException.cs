namespace Vsock.Net;

/// <summary>Why a hybrid vsock <c>CONNECT</c> failed.</summary>
public enum HybridVsockConnectError
{
    /// <summary>The device's Unix socket could not be reached (no such path, nobody listening, no permission).</summary>
    DeviceUnreachable,

    /// <summary>The device closed the connection without <c>OK</c>: nothing in the guest listens on the port, or the guest refused.</summary>
    Refused,

    /// <summary>The device did not answer within the handshake timeout.</summary>
    TimedOut,

    /// <summary>The device answered something that is not <c>OK &lt;port&gt;\n</c>.</summary>
    UnexpectedReply,
}

/// <summary>A hybrid vsock <c>CONNECT port</c> handshake failed; <see cref="Error"/> says how.</summary>
public sealed class HybridVsockConnectException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="error">How it failed.</param>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The socket error behind it, if any.</param>
    public HybridVsockConnectException(HybridVsockConnectError error, string message, Exception? innerException = null)
        : base(message, innerException) => Error = error;

    /// <summary>How it failed.</summary>
    public HybridVsockConnectError Error { get; }
}
