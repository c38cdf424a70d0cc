using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Vsock.Net;

/// <summary>
/// Turns a Linux errno from a vsock call into the <see cref="SocketException"/> the runtime would throw
/// for the same error on a socket it knows. Owns the errno to <see cref="SocketError"/> table; nothing else.
/// </summary>
internal static class VsockErrors
{
    /// <summary>The exception for <paramref name="errno"/>, with the call and the kernel's message.</summary>
    public static SocketException Exception(int errno, string call)
    {
        SocketError error = errno switch
        {
            1 or 13 => SocketError.AccessDenied, // EPERM, EACCES
            4 => SocketError.Interrupted,
            9 => SocketError.OperationAborted, // EBADF: closed under us
            11 => SocketError.WouldBlock,
            19 or 97 => SocketError.AddressFamilyNotSupported, // ENODEV (no transport), EAFNOSUPPORT
            22 => SocketError.InvalidArgument,
            24 or 23 => SocketError.TooManyOpenSockets,
            93 or 94 => SocketError.ProtocolNotSupported, // EPROTONOSUPPORT, ESOCKTNOSUPPORT
            95 => SocketError.OperationNotSupported,
            98 => SocketError.AddressAlreadyInUse,
            99 => SocketError.AddressNotAvailable,
            100 => SocketError.NetworkDown,
            101 => SocketError.NetworkUnreachable,
            104 => SocketError.ConnectionReset,
            105 => SocketError.NoBufferSpaceAvailable,
            106 => SocketError.IsConnected,
            107 => SocketError.NotConnected,
            110 => SocketError.TimedOut,
            111 => SocketError.ConnectionRefused,
            113 => SocketError.HostUnreachable,
            114 => SocketError.AlreadyInProgress,
            115 => SocketError.InProgress,
            _ => SocketError.SocketError,
        };
        return new VsockSocketException(error, $"{call}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
    }
}
