using System.Threading.Channels;

namespace Virtio.Vsock.Testing;

/// <summary>A simulated guest socket listening on a port for connections from the host or sibling guests (the guest accepts at once, like Linux).</summary>
public sealed class GuestListener : IDisposable
{
    private readonly GuestSimulator _simulator;
    private readonly Channel<GuestSocket> _accepted = Channel.CreateUnbounded<GuestSocket>();

    internal GuestListener(GuestSimulator simulator, uint port, VsockType type)
    {
        _simulator = simulator;
        Port = port;
        Type = type;
    }

    /// <summary>The guest port.</summary>
    public uint Port { get; }

    /// <summary>Stream or seqpacket.</summary>
    public VsockType Type { get; }

    /// <summary>Waits for the next connection (from the host or a sibling guest).</summary>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>The connected socket.</returns>
    public ValueTask<GuestSocket> AcceptAsync(CancellationToken cancellationToken = default) => _accepted.Reader.ReadAsync(cancellationToken);

    /// <summary>Stops listening.</summary>
    public void Dispose()
    {
        _simulator.RemoveListener(this);
        _accepted.Writer.TryComplete();
    }

    internal void Deliver(GuestSocket socket) => _accepted.Writer.TryWrite(socket);
}
