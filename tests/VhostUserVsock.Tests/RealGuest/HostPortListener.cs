using System.Net.Sockets;
using Virtio.Vsock.Backends.Unix;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// A host application's listener for guest-initiated connections to host port P: a Unix socket at
/// <c>uds-path_P</c> of the guest socket's type. Disposing closes it and removes the file.
/// </summary>
public sealed class HostPortListener : IDisposable
{
    private readonly Socket _socket;

    /// <summary>Binds and listens.</summary>
    public HostPortListener(string udsPath, uint port, SocketType type, int backlog = 512)
    {
        Port = port;
        Type = type;
        Path = UnixBackendPaths.HostPortPath(udsPath, port);
        _socket = new Socket(AddressFamily.Unix, type, ProtocolType.Unspecified);
        try
        {
            _socket.Bind(new UnixDomainSocketEndPoint(Path));
            _socket.Listen(backlog);
        }
        catch
        {
            _socket.Dispose();
            throw;
        }
    }

    /// <summary>The host port.</summary>
    public uint Port { get; }

    /// <summary>Stream or seqpacket.</summary>
    public SocketType Type { get; }

    /// <summary><c>uds-path_P</c>.</summary>
    public string Path { get; }

    /// <summary>Accepts the next connection.</summary>
    public async Task<Socket> AcceptAsync(CancellationToken cancellationToken) =>
        await _socket.AcceptAsync(cancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public void Dispose()
    {
        _socket.Dispose();
        try
        {
            File.Delete(Path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
