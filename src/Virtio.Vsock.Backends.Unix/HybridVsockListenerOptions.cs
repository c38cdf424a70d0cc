using Virtio.Vsock;

namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// Settings of one <see cref="HybridVsockListener"/>. Owns configuration values only; must never
/// be changed after the listener started (it copies what it needs at start).
/// </summary>
internal sealed class HybridVsockListenerOptions
{
    /// <summary>The default handshake deadline (5 s from accept to <c>\n</c>).</summary>
    public static readonly TimeSpan DefaultHandshakeTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The socket path to listen on: the backend's <c>uds_path</c> for SOCK_STREAM, and by convention
    /// <see cref="UnixBackendPaths.SeqPacketListenerPath"/> for SOCK_SEQPACKET.
    /// </summary>
    public required string Path { get; init; }

    /// <summary>
    /// A socket already bound to <see cref="Path"/> and listening, passed by a service manager (systemd socket
    /// activation), used instead of binding one; the listener owns it from the start and never removes its file.
    /// Its type must be <see cref="SocketType"/>. <see langword="null"/> (default): bind <see cref="Path"/>.
    /// </summary>
    public System.Net.Sockets.Socket? Passed { get; init; }

    /// <summary>The socket type: <see cref="VsockType.Stream"/> (default) or <see cref="VsockType.SeqPacket"/>.</summary>
    public VsockType SocketType { get; init; } = VsockType.Stream;

    /// <summary>
    /// How long a host connection has, from accept, to deliver its whole <c>CONNECT</c> line
    /// (a total deadline, not an idle timeout, so a peer trickling one byte at a time is cut off too).
    /// </summary>
    public TimeSpan HandshakeTimeout { get; init; } = DefaultHandshakeTimeout;

    /// <summary>
    /// How many accepted connections may be reading their <c>CONNECT</c> line (or waiting for room in
    /// the request queue) at once. When all are busy the listener stops accepting, and further
    /// connections wait in the kernel's backlog. Default 64.
    /// </summary>
    public int MaxPendingHandshakes { get; init; } = 64;

    /// <summary>How many completed requests may wait for the engine. Default 64.</summary>
    public int MaxQueuedRequests { get; init; } = 64;

    /// <summary>The <c>listen()</c> backlog. Default 128.</summary>
    public int Backlog { get; init; } = 128;

    /// <summary>
    /// Called on the device loop each time a completed handshake joined the request queue, so the engine can take it
    /// (<see cref="HybridVsockListener.TryTake"/>) in the same turn. Must not block; exceptions it throws are traced and
    /// swallowed (the request stays queued).
    /// </summary>
    public Action? RequestQueued { get; init; }

    /// <summary>
    /// Called (on the device loop, or on the thread that disposes the listener) for each rejected host connection, with the reason and, for
    /// <see cref="HandshakeFailure.InvalidCommand"/>, the parser's detail. For logging; must not block;
    /// exceptions it throws are swallowed.
    /// </summary>
    public Action<HandshakeFailure, ConnectCommandError>? HandshakeFailed { get; init; }
}
