namespace VsockLoad.Guest;

/// <summary>
/// The guest driver's state for one stream connection: the credit both ways (Linux's
/// <c>virtio_vsock_sock</c> counters), the pattern offsets both ways, and the control packets owed.
/// Plain fields: the single driver thread owns it.
/// </summary>
internal sealed class GuestConnection
{
    /// <summary>Creates the state.</summary>
    /// <param name="localPort">The guest's port.</param>
    /// <param name="peerPort">The host's port.</param>
    /// <param name="txSeed">Pattern seed of the bytes the guest sends.</param>
    /// <param name="rxSeed">Pattern seed of the bytes the guest expects.</param>
    public GuestConnection(uint localPort, uint peerPort, int txSeed, int rxSeed)
    {
        LocalPort = localPort;
        PeerPort = peerPort;
        TxSeed = txSeed;
        RxSeed = rxSeed;
    }

    /// <summary>The guest's port.</summary>
    public uint LocalPort { get; }

    /// <summary>The host's port.</summary>
    public uint PeerPort { get; }

    /// <summary>Pattern seed of the bytes the guest sends.</summary>
    public int TxSeed { get; }

    /// <summary>Pattern seed of the bytes the guest expects.</summary>
    public int RxSeed { get; }

    /// <summary>The connection state.</summary>
    public ConnectionState State { get; set; }

    /// <summary>The device's buf_alloc, from its latest packet.</summary>
    public uint PeerBufAlloc;

    /// <summary>The device's fwd_cnt, from its latest packet.</summary>
    public uint PeerFwdCnt;

    /// <summary>Payload bytes the guest sent (wrapping).</summary>
    public uint TxCnt;

    /// <summary>Payload bytes the guest received and consumed (wrapping; consumption is immediate).</summary>
    public uint FwdCnt;

    /// <summary>The fwd_cnt carried by the guest's latest packet: what the device knows.</summary>
    public uint LastSentFwdCnt;

    /// <summary>Stream offset of the next byte the guest sends.</summary>
    public long TxOffset;

    /// <summary>Stream offset the guest sends up to.</summary>
    public long TxTarget;

    /// <summary>Stream offset of the next byte the guest expects.</summary>
    public long RxOffset;

    /// <summary>Bytes per write of the guest's sender (packets never cross a write).</summary>
    public int WriteSize = 64 * 1024;

    /// <summary>Echo every byte received (request/response).</summary>
    public bool Echo;

    /// <summary>Control packets owed (sent as TX space allows).</summary>
    public PendingControl Pending;

    /// <summary>Whether the connection is in the driver's send list.</summary>
    public bool Queued;

    /// <summary>When the sender found no credit (Stopwatch ticks), or 0.</summary>
    public long StalledSince;

    /// <summary>Whether a CREDIT_REQUEST was sent for the current stall.</summary>
    public bool CreditRequested;

    /// <summary>The device shut down its sending side.</summary>
    public bool PeerSendClosed;

    /// <summary>Scenario data (e.g. the matching host socket).</summary>
    public object? Tag;
}

/// <summary>Where a connection is.</summary>
internal enum ConnectionState
{
    /// <summary>REQUEST sent, RESPONSE not yet received.</summary>
    Connecting,

    /// <summary>Data may flow.</summary>
    Established,

    /// <summary>The guest sent SHUTDOWN (both directions) and waits for RST.</summary>
    Closing,

    /// <summary>Done (RST exchanged).</summary>
    Closed,
}

/// <summary>Control packets a connection owes the device.</summary>
[Flags]
internal enum PendingControl
{
    /// <summary>Nothing.</summary>
    None = 0,

    /// <summary>REQUEST (guest connect).</summary>
    Request = 1,

    /// <summary>RESPONSE (accept).</summary>
    Response = 2,

    /// <summary>CREDIT_UPDATE.</summary>
    CreditUpdate = 4,

    /// <summary>CREDIT_REQUEST.</summary>
    CreditRequest = 8,

    /// <summary>SHUTDOWN with both flags.</summary>
    Shutdown = 16,

    /// <summary>RST.</summary>
    Rst = 32,
}
