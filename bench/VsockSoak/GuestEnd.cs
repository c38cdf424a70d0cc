using Virtio.Vsock.Testing;

namespace VsockSoak;

/// <summary>The guest application's end of a soak connection: a simulated Linux vsock socket. Owns it (closing aborts it if still open).</summary>
internal sealed class GuestEnd : ISoakEnd
{
    /// <summary>Wraps a connected guest socket.</summary>
    public GuestEnd(GuestSocket socket) => Socket = socket;

    /// <summary>The guest socket.</summary>
    public GuestSocket Socket { get; }

    /// <inheritdoc/>
    public Task SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => Socket.SendAsync(data, cancellationToken);

    /// <inheritdoc/>
    public Task<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken) => Socket.ReceiveAsync(buffer, cancellationToken);

    /// <inheritdoc/>
    public void ShutdownSend() => Socket.Shutdown(Virtio.Vsock.ShutdownFlags.Send);

    /// <inheritdoc/>
    public Task CloseAsync() => Socket.CloseAsync();

    /// <inheritdoc/>
    public void Abort() => Socket.Abort();

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Socket.State != GuestSocketState.Closed)
        {
            Socket.Abort();
        }
    }
}
