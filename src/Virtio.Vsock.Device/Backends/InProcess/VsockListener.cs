using System.Threading.Channels;

namespace Virtio.Vsock.Device.Backends.InProcess;

/// <summary>
/// Accepts guest-initiated connections to one vsock port. Connections are accepted on the device side as
/// soon as they arrive (like a kernel listen queue) up to the backlog; beyond it the guest gets RST.
/// </summary>
public sealed class VsockListener : IDisposable
{
    private readonly InProcessBackend _backend;
    private readonly Channel<VsockStream> _accepted = Channel.CreateUnbounded<VsockStream>(new UnboundedChannelOptions { SingleReader = false, SingleWriter = true });
    private readonly int _backlog;
    private int _pending;
    private int _disposed;

    internal VsockListener(InProcessBackend backend, uint port, VsockType type, int backlog)
    {
        _backend = backend;
        Port = port;
        Type = type;
        _backlog = backlog;
    }

    /// <summary>The listening port.</summary>
    public uint Port { get; }

    /// <summary>Stream or seqpacket.</summary>
    public VsockType Type { get; }

    /// <summary>Waits for the next connection from the guest.</summary>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>The connection.</returns>
    /// <exception cref="ObjectDisposedException">The listener was disposed.</exception>
    public async ValueTask<VsockStream> AcceptAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            VsockStream stream = await _accepted.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            Interlocked.Decrement(ref _pending);
            return stream;
        }
        catch (ChannelClosedException)
        {
            throw new ObjectDisposedException(nameof(VsockListener));
        }
    }

    /// <summary>Stops listening; connections not yet accepted are closed.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _backend.RemoveListener(this);
        _accepted.Writer.TryComplete();
        while (_accepted.Reader.TryRead(out VsockStream? stream))
        {
            stream.Dispose();
        }
    }

    internal bool TryReserve()
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return false;
        }

        if (Interlocked.Increment(ref _pending) > _backlog)
        {
            Interlocked.Decrement(ref _pending);
            return false;
        }

        return true;
    }

    internal void Deliver(VsockStream stream)
    {
        if (!_accepted.Writer.TryWrite(stream))
        {
            stream.Dispose();
        }
    }
}
