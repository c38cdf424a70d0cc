using Microsoft.Extensions.Logging;

namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// Settings of a <see cref="UnixSocketBackend"/>. Owns configuration values only; must never be
/// changed after the backend was created (the backend copies what it needs in its constructor).
/// </summary>
/// <remarks>
/// Paths (see <see cref="UnixBackendPaths"/>): host programs connect to <see cref="UdsPath"/>
/// (SOCK_STREAM) or <c>UdsPath + ".seqpacket"</c> (SOCK_SEQPACKET, when
/// <see cref="SeqPacketListener"/> is on) and write <c>CONNECT &lt;port&gt;\n</c>; a guest connection
/// to host port P goes to <c>UdsPath + "_" + P</c>.
/// </remarks>
public sealed class UnixSocketBackendOptions
{
    /// <summary>The default bound on host connections waiting for the guest's answer (256).</summary>
    public const int DefaultMaxPendingHostConnects = 256;

    /// <summary>
    /// The hybrid-vsock socket path (<c>uds_path</c> in Firecracker and vhost-device-vsock). At most
    /// <see cref="UnixBackendPaths.MaxPathBytes"/> UTF-8 bytes including the longest suffix
    /// (<c>_4294967295</c>).
    /// </summary>
    public required string UdsPath { get; init; }

    /// <summary>Optional logger (connection failures at debug level, start/stop at information level).</summary>
    public ILogger? Logger { get; init; }

    /// <summary>
    /// Also listen with SOCK_SEQPACKET at <see cref="UnixBackendPaths.SeqPacketListenerPath"/> for
    /// host-initiated SEQPACKET connections. Default true.
    /// </summary>
    public bool SeqPacketListener { get; init; } = true;

    /// <summary>
    /// How long a host connection has, from accept, to deliver its whole <c>CONNECT</c> line. Default
    /// 5 s (<see cref="HybridVsockListenerOptions.DefaultHandshakeTimeout"/>).
    /// </summary>
    public TimeSpan HandshakeTimeout { get; init; } = HybridVsockListenerOptions.DefaultHandshakeTimeout;

    /// <summary>
    /// How many host connections per listener may be reading their <c>CONNECT</c> line at once; beyond
    /// that, connections wait in the kernel backlog. Default 64.
    /// </summary>
    public int MaxPendingHandshakes { get; init; } = 64;

    /// <summary>
    /// How many host connections (both listeners together) may wait for the guest to accept or refuse
    /// at once; beyond that, completed handshakes wait in the listener's bounded queue and then in the
    /// kernel backlog. Default <see cref="DefaultMaxPendingHostConnects"/>.
    /// </summary>
    public int MaxPendingHostConnects { get; init; } = DefaultMaxPendingHostConnects;

    /// <summary>The <c>listen()</c> backlog of each listener. Default 128.</summary>
    public int ListenBacklog { get; init; } = 128;

    /// <summary>
    /// How long a guest-initiated connect retries a host listener whose backlog is full before the
    /// guest gets RST. Default 1 s (<see cref="UnixPortConnector.DefaultConnectTimeout"/>), under the
    /// guest's usual 2 s connect timeout. A missing socket file or a stale one is refused at once.
    /// </summary>
    public TimeSpan GuestConnectTimeout { get; init; } = UnixPortConnector.DefaultConnectTimeout;

    /// <summary>
    /// The largest SEQPACKET message either way, in bytes; a larger one resets its connection. Also
    /// the most a SEQPACKET connection stages (one partial message each way). Default 256 KiB
    /// (<see cref="SeqPacketMessageReader.DefaultMaxMessageSize"/>).
    /// </summary>
    public int MaxSeqPacketMessageSize { get; init; } = SeqPacketMessageReader.DefaultMaxMessageSize;

    /// <summary>
    /// Listening sockets a service manager passed (systemd socket activation): called with the stream path
    /// (<see cref="UdsPath"/>) and the SEQPACKET path at start; a socket it returns (already bound to that path and
    /// listening, of the matching type) is used instead of binding one, is owned by the backend from then on, and
    /// its file is never removed. <see langword="null"/> (default), or a <see langword="null"/> result: bind the path.
    /// </summary>
    public Func<string, System.Net.Sockets.Socket?>? PassedListener { get; init; }

    /// <summary>Which connections pass (ports each way, host programs' uid/gid); <see langword="null"/> (default): all.</summary>
    public Access.VsockAccessRules? Access { get; init; }
}
