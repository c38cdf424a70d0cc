using System.Net.Sockets;

namespace Vsock.Net;

/// <summary>
/// Listens on a vsock port (<c>bind</c> + <c>listen</c> on AF_VSOCK) and accepts connections as
/// <see cref="Socket"/>s. Owns the listening descriptor; accepted sockets belong to the caller.
/// Waits for connections in bounded <c>poll</c> slices on a thread-pool thread, so
/// <see cref="AcceptAsync"/> honours cancellation and <see cref="Dispose"/> within about 100 ms.
/// </summary>
public sealed class VsockListener : IDisposable
{
    private readonly VsockDescriptor _descriptor;
    private readonly CancellationTokenSource _disposed = new();

    private VsockListener(VsockDescriptor descriptor, VsockEndPoint localEndPoint, SocketType type)
    {
        _descriptor = descriptor;
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
        VsockDescriptor descriptor = VsockDescriptor.Create(type);
        try
        {
            descriptor.Bind(endPoint);
            descriptor.Listen(backlog);
            return new VsockListener(descriptor, descriptor.LocalEndPoint(), type);
        }
        catch
        {
            descriptor.Dispose();
            throw;
        }
    }

    /// <summary>Waits for the next connection.</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The connected socket (blocking mode) and the peer's address.</returns>
    /// <exception cref="OperationCanceledException">Cancelled, or the listener was disposed.</exception>
    public Task<(Socket Socket, VsockEndPoint? RemoteEndPoint)> AcceptAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed.IsCancellationRequested, this);
        return Task.Run(() =>
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposed.Token);
            (int fd, VsockEndPoint? remote) = _descriptor.Accept(linked.Token);
            using VsockDescriptor accepted = VsockDescriptor.Adopt(fd);
            return (accepted.ToSocket(), remote);
        }, cancellationToken);
    }

    /// <summary>Stops listening; pending <see cref="AcceptAsync"/> calls end with <see cref="OperationCanceledException"/>.</summary>
    public void Dispose()
    {
        if (_disposed.IsCancellationRequested)
        {
            return;
        }

        _disposed.Cancel();
        _descriptor.Dispose();
    }
}
