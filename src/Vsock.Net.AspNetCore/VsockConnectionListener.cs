using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;

namespace Vsock.Net.AspNetCore;

/// <summary>
/// One Kestrel listener on a vsock port: accepts from a <see cref="VsockListener"/> and wraps each
/// socket as a Kestrel connection. Owns the listener and the connection-context factory; accepted
/// connections belong to Kestrel.
/// </summary>
internal sealed class VsockConnectionListener : IConnectionListener
{
    private readonly VsockListener _listener;
    private readonly SocketConnectionContextFactory _contexts;
    private int _unbound;

    public VsockConnectionListener(VsockListener listener, SocketConnectionContextFactory contexts)
    {
        _listener = listener;
        _contexts = contexts;
    }

    public EndPoint EndPoint => _listener.LocalEndPoint;

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        while (Volatile.Read(ref _unbound) == 0)
        {
            try
            {
                (System.Net.Sockets.Socket socket, _) = await _listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
                return _contexts.Create(socket);
            }
            catch (OperationCanceledException) when (Volatile.Read(ref _unbound) != 0)
            {
                return null;
            }
            catch (ObjectDisposedException)
            {
                return null;
            }
            catch (System.Net.Sockets.SocketException) when (Volatile.Read(ref _unbound) != 0)
            {
                return null; // the listener was closed under the pending accept
            }
            catch (System.Net.Sockets.SocketException) when (Volatile.Read(ref _unbound) == 0)
            {
                // A connection that failed between the kernel's accept queue and us: take the next one.
            }
        }

        return null;
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        Volatile.Write(ref _unbound, 1);
        _listener.Dispose();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        Volatile.Write(ref _unbound, 1);
        _listener.Dispose();
        _contexts.Dispose();
        return ValueTask.CompletedTask;
    }
}
