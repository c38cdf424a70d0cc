using System.Net.Sockets;
using Virtio.Vsock.Backends.Unix;

namespace Virtio.Vsock.Device.Tests.Unix;

/// <summary>
/// Test helper: completes when a socket has data, a SOCK_SEQPACKET message (even an empty one), end of stream or
/// an error pending, without consuming anything (a zero-byte <c>MSG_PEEK</c> receive through the runtime's event
/// loop). The backend itself never waits this way: the device loop watches its sockets.
/// </summary>
internal static class SocketWait
{
    /// <summary>Waits until <paramref name="socket"/> is readable.</summary>
    /// <returns>Ok when readable, Canceled, SocketClosed, Reset or Error.</returns>
    public static async ValueTask<UnixIoResult> ReadableAsync(Socket socket, CancellationToken cancellationToken = default)
    {
        try
        {
            await socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.Peek, cancellationToken);
            return UnixIoResult.Success(0);
        }
        catch (Exception e) when (e is ObjectDisposedException or SocketException or OperationCanceledException)
        {
            return e switch
            {
                OperationCanceledException => UnixIoResult.Failure(UnixIoStatus.Canceled, 0),
                ObjectDisposedException => UnixIoResult.Failure(UnixIoStatus.SocketClosed, 0),
                SocketException { SocketErrorCode: SocketError.ConnectionReset } => UnixIoResult.Failure(UnixIoStatus.Reset, 104),
                SocketException { SocketErrorCode: SocketError.OperationAborted or SocketError.Interrupted } => UnixIoResult.Failure(UnixIoStatus.SocketClosed, 0),
                SocketException s => UnixIoResult.Failure(UnixIoStatus.Error, s.NativeErrorCode),
                _ => UnixIoResult.Failure(UnixIoStatus.Error, 0),
            };
        }
    }
}
