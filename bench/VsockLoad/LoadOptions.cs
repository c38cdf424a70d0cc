namespace VsockLoad;

/// <summary>What one load-generator run does and against which backend.</summary>
internal sealed record LoadOptions
{
    /// <summary>The mode.</summary>
    public LoadMode Mode { get; init; } = LoadMode.GuestToHost;

    /// <summary>Bytes per write (streams) or per connection (connections mode).</summary>
    public int WriteSize { get; init; } = 64 * 1024;

    /// <summary>Bytes to stream (streams), round trips (request/response) or connections (connections).</summary>
    public long Count { get; init; } = 1L << 30;

    /// <summary>Bytes (streams) or round trips (request/response) before the timed window starts.</summary>
    public long Warmup { get; init; }

    /// <summary>Connections open at once (connections mode).</summary>
    public int Concurrency { get; init; } = 16;

    /// <summary>Negotiate VIRTIO_F_EVENT_IDX.</summary>
    public bool EventIdx { get; init; }

    /// <summary>The backend's vhost-user socket.</summary>
    public string SocketPath { get; init; } = string.Empty;

    /// <summary>The backend's hybrid vsock socket (<c>--uds-path</c>).</summary>
    public string UdsPath { get; init; } = string.Empty;

    /// <summary>The backend's process id for CPU time, or 0.</summary>
    public int BackendPid { get; init; }

    /// <summary>The whole mode's deadline.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Also measure the socketpair limit.</summary>
    public bool MeasureLimit { get; init; } = true;

    /// <summary>The host port used by the mode.</summary>
    public uint Port { get; init; } = 5000;
}

/// <summary>The load generator's modes.</summary>
internal enum LoadMode
{
    /// <summary>One guest-initiated stream, guest to host.</summary>
    GuestToHost,

    /// <summary>One host-initiated stream, host to guest.</summary>
    HostToGuest,

    /// <summary>1-byte request from the host, 1-byte answer from the guest, one at a time.</summary>
    RequestResponse,

    /// <summary>Host-initiated connections: open, send, close.</summary>
    Connections,
}
