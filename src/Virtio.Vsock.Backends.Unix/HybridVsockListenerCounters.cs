namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// A snapshot of a <see cref="HybridVsockListener"/>'s counters. Owns copies of the values; must
/// never be taken as consistent across fields (each is read atomically on its own).
/// </summary>
public readonly record struct HybridVsockListenerCounters
{
    /// <summary>Host connections accepted.</summary>
    public long Accepted { get; init; }

    /// <summary>Handshakes completed and queued as <see cref="HostConnectRequest"/>s.</summary>
    public long Delivered { get; init; }

    /// <summary>Connections closed for <see cref="HandshakeFailure.InvalidCommand"/>.</summary>
    public long InvalidCommand { get; init; }

    /// <summary>Connections closed for <see cref="HandshakeFailure.CommandTooLong"/>.</summary>
    public long CommandTooLong { get; init; }

    /// <summary>Connections closed for <see cref="HandshakeFailure.EndOfStream"/>.</summary>
    public long EndOfStream { get; init; }

    /// <summary>Connections closed for <see cref="HandshakeFailure.TimedOut"/>.</summary>
    public long TimedOut { get; init; }

    /// <summary>Connections closed for <see cref="HandshakeFailure.ConnectionError"/>.</summary>
    public long ConnectionError { get; init; }

    /// <summary>Connections closed for <see cref="HandshakeFailure.MessageNotOneLine"/>.</summary>
    public long MessageNotOneLine { get; init; }

    /// <summary>Connections closed for <see cref="HandshakeFailure.ListenerStopped"/>.</summary>
    public long ListenerStopped { get; init; }

    /// <summary>Failed <c>accept()</c> calls (e.g. out of file descriptors; the listener backs off and retries).</summary>
    public long AcceptErrors { get; init; }

    /// <summary>Accepted connections not yet queued or closed right now (reading their line, or waiting for room in the queue).</summary>
    public int PendingHandshakes { get; init; }

    /// <summary>Requests waiting for the engine right now.</summary>
    public int QueuedRequests { get; init; }

    /// <summary>All handshake failures, whatever the reason.</summary>
    public long Failed => InvalidCommand + CommandTooLong + EndOfStream + TimedOut + ConnectionError + MessageNotOneLine + ListenerStopped;
}
