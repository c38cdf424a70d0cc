namespace Virtio.Vsock.Device;

/// <summary>
/// The diagnostic view of a connection (<see cref="VsockConnectionInfo"/>): reads its state, never changes it.
/// Runs on the device loop only (called from <see cref="VsockMuxer.Describe"/>). The stall start times below are
/// written on the loop where each wait begins (one assignment each, <see cref="Environment.TickCount64"/>), read here.
/// </summary>
internal sealed partial class VsockConnection
{
    // When the current wait of each kind began (milliseconds, Environment.TickCount64); meaningful only while that
    // wait lasts (_creditStalled, _writeRequested, InRxQueue).
    private long _creditStalledSince;
    private long _writeRequestedSince;

    /// <summary>When the connection last joined the RX queue (<see cref="Environment.TickCount64"/>), set by the muxer.</summary>
    public long RxQueuedSince { get; set; }

    /// <summary>Copies this connection's state.</summary>
    /// <param name="rxStarved">Whether the guest has no RX buffers posted right now.</param>
    /// <returns>The copy.</returns>
    public VsockConnectionInfo Describe(bool rxStarved)
    {
        VsockStallReason stall = VsockStallReason.None;
        long since = 0;
        if (InRxQueue && rxStarved)
        {
            stall = VsockStallReason.RxBuffers;
            since = RxQueuedSince;
        }
        else if (WantsHostRead && _creditStalled && PeerFree < MinChunk)
        {
            stall = VsockStallReason.PeerCredit;
            since = _creditStalledSince;
        }
        else if (_writeRequested && !_txBuffer.IsEmpty)
        {
            stall = VsockStallReason.HostSocket;
            since = _writeRequestedSince;
        }

        uint held = _rxCnt - _fwdCnt;
        return new VsockConnectionInfo
        {
            Type = Type,
            State = State.ToString(),
            HostPort = LocalPort,
            GuestCid = PeerCid,
            GuestPort = PeerPort,
            BytesFromGuest = _rxCnt,
            BytesToGuest = _txCnt,
            BufferedToHost = held,
            OurCredit = held > _bufAlloc ? 0 : _bufAlloc - held,
            PeerCredit = PeerFree,
            PeerBufAlloc = _peerBufAlloc,
            Stall = stall,
            StalledMs = stall == VsockStallReason.None ? 0 : Math.Max(0, Environment.TickCount64 - since),
        };
    }
}
