using System.Net.Sockets;

namespace Vsock.Net;

/// <summary>
/// A vsock call failed. A <see cref="SocketException"/> (catch that) whose
/// <see cref="SocketException.SocketErrorCode"/> is the runtime's name for the error and whose
/// <see cref="NativeErrno"/> is the Linux errno, with the call that failed in the message.
/// </summary>
public sealed class VsockSocketException : SocketException
{
    private readonly string _message;

    /// <summary>Creates the exception.</summary>
    /// <param name="error">The runtime's name for the error.</param>
    /// <param name="message">What failed.</param>
    /// <param name="nativeErrno">The Linux errno.</param>
    public VsockSocketException(SocketError error, string message, int nativeErrno)
        : base((int)error)
    {
        _message = message;
        NativeErrno = nativeErrno;
    }

    /// <summary>The Linux errno of the failed call.</summary>
    public int NativeErrno { get; }

    /// <inheritdoc/>
    public override string Message => _message;
}
