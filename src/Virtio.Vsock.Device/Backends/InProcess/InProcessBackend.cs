using System.Collections.Concurrent;

namespace Virtio.Vsock.Device.Backends.InProcess;

/// <summary>
/// The in-process host side: .NET code listens on vsock ports for guest connections and connects to guest
/// ports, each connection a <see cref="VsockStream"/>. For VMMs written in C#, tests and benchmarks.
/// </summary>
public sealed class InProcessBackend : IVsockBackend
{
    private readonly ConcurrentDictionary<(uint Port, VsockType Type), VsockListener> _listeners = new();
    private readonly int _bufferSize;
    private IVsockBackendHost? _host;

    /// <summary>Creates the backend.</summary>
    /// <param name="bufferSize">Bytes each connection buffers per direction on the host side (default 128 KiB).</param>
    public InProcessBackend(int bufferSize = 128 * 1024)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bufferSize, 4096);
        _bufferSize = bufferSize;
    }

    /// <summary>Listens on <paramref name="port"/> for guest connections.</summary>
    /// <param name="port">The host port the guest connects to.</param>
    /// <param name="type">Stream or seqpacket.</param>
    /// <param name="backlog">Connections accepted but not yet taken by <see cref="VsockListener.AcceptAsync"/>; more get RST.</param>
    /// <returns>The listener.</returns>
    /// <exception cref="InvalidOperationException">The port is taken for this type.</exception>
    public VsockListener Listen(uint port, VsockType type = VsockType.Stream, int backlog = 128)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(backlog, 1);
        var listener = new VsockListener(this, port, type, backlog);
        if (!_listeners.TryAdd((port, type), listener))
        {
            throw new InvalidOperationException($"vsock port {port} ({type}) is already listening.");
        }

        return listener;
    }

    /// <summary>Connects to <paramref name="guestPort"/> in the guest.</summary>
    /// <param name="guestPort">The guest port.</param>
    /// <param name="type">Stream or seqpacket.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>The connected stream.</returns>
    /// <exception cref="VsockConnectException">Refused, timed out, no resources or device not running.</exception>
    public async Task<VsockStream> ConnectAsync(uint guestPort, VsockType type = VsockType.Stream, CancellationToken cancellationToken = default)
    {
        IVsockBackendHost host = _host ?? throw new InvalidOperationException("The backend is not attached to a device.");
        var endpoint = new InProcessEndpoint(type, _bufferSize);
        uint localPort = await host.ConnectAsync(guestPort, type, endpoint, cancellationToken).ConfigureAwait(false);
        return new VsockStream(endpoint, type, localPort, host.GuestCid, guestPort);
    }

    /// <inheritdoc/>
    void IVsockBackend.Attach(IVsockBackendHost host) => _host = host;

    /// <inheritdoc/>
    void IVsockBackend.OnGuestConnect(IVsockIncomingConnection connection)
    {
        if (!_listeners.TryGetValue((connection.LocalPort, connection.Type), out VsockListener? listener) || !listener.TryReserve())
        {
            connection.Refuse();
            return;
        }

        var endpoint = new InProcessEndpoint(connection.Type, _bufferSize);
        var stream = new VsockStream(endpoint, connection.Type, connection.LocalPort, connection.PeerCid, connection.PeerPort);
        connection.Accept(endpoint);
        listener.Deliver(stream);
    }

    /// <inheritdoc/>
    void IVsockBackend.OnDeviceReset()
    {
    }

    internal void RemoveListener(VsockListener listener) =>
        _listeners.TryRemove(new KeyValuePair<(uint, VsockType), VsockListener>((listener.Port, listener.Type), listener));
}
