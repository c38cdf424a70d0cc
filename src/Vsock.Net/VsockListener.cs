using System.Net.Sockets;

namespace Vsock.Net;

/// <summary>
/// Listens on a vsock port (<c>bind</c> + <c>listen</c> on AF_VSOCK through <see cref="Socket.Bind"/> and
/// <see cref="Socket.Listen(int)"/> with a <see cref="VsockEndPoint"/>) and accepts connections with the
/// runtime's own asynchronous accept. Owns the listening socket; accepted sockets belong to the caller.
/// </summary>
public sealed class VsockListener : IDisposable
{
    private readonly Socket _socket;

    private VsockListener(Socket socket, VsockEndPoint localEndPoint, SocketType type)
    {
        _socket = socket;
        LocalEndPoint = localEndPoint;
        SocketType = type;
    }

    /// <summary>The bound address (the kernel's port when <see cref="VsockEndPoint.AnyPort"/> was asked for).</summary>
    public VsockEndPoint LocalEndPoint { get; }

    /// <summary>Stream or Seqpacket.</summary>
    public SocketType SocketType { get; }

    /// <summary>Listens on <paramref name="port"/> of every local CID.</summary>
    /// <param name="port">The port.</param>
    /// <param name="type"><see cref="SocketType.Stream"/> or <see cref="SocketType.Seqpacket"/>.</param>
    /// <param name="backlog">Pending connections the kernel queues.</param>
    /// <returns>The listener.</returns>
    public static VsockListener Listen(uint port, SocketType type = SocketType.Stream, int backlog = 128) =>
        Listen(new VsockEndPoint(VsockEndPoint.AnyCid, port), type, backlog);

    /// <summary>Listens on <paramref name="endPoint"/>.</summary>
    /// <param name="endPoint">Usually <see cref="VsockEndPoint.AnyCid"/> and a port.</param>
    /// <param name="type"><see cref="SocketType.Stream"/> or <see cref="SocketType.Seqpacket"/>.</param>
    /// <param name="backlog">Pending connections the kernel queues.</param>
    /// <returns>The listener.</returns>
    /// <exception cref="SocketException">The port is taken (<see cref="SocketError.AddressAlreadyInUse"/>) or no vsock transport.</exception>
    public static VsockListener Listen(VsockEndPoint endPoint, SocketType type = SocketType.Stream, int backlog = 128)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        ArgumentOutOfRangeException.ThrowIfLessThan(backlog, 1);
        Socket socket = VsockSocket.Create(type);
        try
        {
            socket.Bind(endPoint);
            socket.Listen(backlog);
            return new VsockListener(socket, socket.LocalEndPoint as VsockEndPoint ?? endPoint, type);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Waits for the next connection.</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The connected socket and the peer's address.</returns>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    /// <exception cref="ObjectDisposedException">The listener was disposed (a pending accept may instead end with a <see cref="SocketException"/> of <see cref="SocketError.OperationAborted"/>).</exception>
    public async Task<(Socket Socket, VsockEndPoint? RemoteEndPoint)> AcceptAsync(CancellationToken cancellationToken = default)
    {
        Socket accepted = await _socket.AcceptAsync(cancellationToken).ConfigureAwait(false);
        return (accepted, accepted.RemoteEndPoint as VsockEndPoint);
    }

    /// <summary>Stops listening; pending <see cref="AcceptAsync"/> calls end.</summary>
    public void Dispose() => _socket.Dispose();
}
