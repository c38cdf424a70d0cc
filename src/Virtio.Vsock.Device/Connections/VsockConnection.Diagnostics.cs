namespace Virtio.Vsock.Device;

/// <summary>
/// The diagnostic view of a connection (<see cref="VsockConnectionInfo"/>): reads its state, never changes it.
/// Runs on the device loop only (called from <see cref="VsockMuxer.Describe"/>).
/// </summary>
internal sealed partial class VsockConnection
{
    /// <summary>Copies this connection's state.</summary>
    /// <param name="rxStarved">Whether the guest has no RX buffers posted right now.</param>
    /// <returns>The copy.</returns>
    public VsockConnectionInfo Describe(bool rxStarved)
    {
        VsockStallReason stall = VsockStallReason.None;
        if (InRxQueue && rxStarved)
        {
            stall = VsockStallReason.RxBuffers;
        }
        else if (WantsHostRead && _creditStalled && PeerFree < MinChunk)
        {
            stall = VsockStallReason.PeerCredit;
        }
        else if (_writeRequested && !_txBuffer.IsEmpty)
        {
            stall = VsockStallReason.HostSocket;
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
        };
    }
}
