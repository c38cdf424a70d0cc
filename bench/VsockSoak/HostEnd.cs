using System.Net.Sockets;

namespace VsockSoak;

/// <summary>The host program's end of a soak connection: a real Unix stream socket. Owns the socket.</summary>
internal sealed class HostEnd : ISoakEnd
{
    private readonly Socket _socket;
    private int _disposed;

    /// <summary>Wraps a connected socket.</summary>
    public HostEnd(Socket socket) => _socket = socket;

    /// <inheritdoc/>
    public async Task SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (data.Length > 0)
        {
            int sent = await _socket.SendAsync(data, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            data = data[sent..];
        }
    }

    /// <inheritdoc/>
    public async Task<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        await _socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public void ShutdownSend() => _socket.Shutdown(SocketShutdown.Send);

    /// <inheritdoc/>
    public Task CloseAsync()
    {
        Dispose();
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public void Abort() => Dispose();

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _socket.Dispose();
        }
    }
}
