namespace Virtio.Vsock.Device.Siblings;

/// <summary>
/// What one device remembers about a connection between its guest and a sibling guest: enough to check the
/// packets it relays against the vsock state machine and the receiver's credit, and to reset the connection
/// on both sides when something goes wrong. The connection's data never stops here.
/// </summary>
/// <remarks>
/// <b>Owns:</b> the state, who started the connection, the peer device's epoch when it started, and the
/// credit the peer guest advertised (its <c>buf_alloc</c> and <c>fwd_cnt</c>, from the headers this device
/// delivered) against the payload bytes the local guest sent. <b>Must never:</b> be touched off its
/// device's loop.
/// </remarks>
internal sealed class SiblingFlow
{
    /// <summary>Creates a flow in <see cref="SiblingFlowState.Requested"/>.</summary>
    /// <param name="key">The key.</param>
    /// <param name="route">The route to the peer device.</param>
    /// <param name="type">Stream or seqpacket.</param>
    /// <param name="locallyInitiated">Whether the local guest sent the REQUEST.</param>
    /// <param name="peerEpoch">The peer device's epoch when the connection started.</param>
    public SiblingFlow(SiblingFlowKey key, SiblingRoute route, VsockType type, bool locallyInitiated, long peerEpoch)
    {
        Key = key;
        Route = route;
        Type = type;
        LocallyInitiated = locallyInitiated;
        PeerEpoch = peerEpoch;
    }

    /// <summary>The key.</summary>
    public SiblingFlowKey Key { get; }

    /// <summary>The route from this device to the peer device.</summary>
    public SiblingRoute Route { get; }

    /// <summary>Stream or seqpacket.</summary>
    public VsockType Type { get; }

    /// <summary>Whether the local guest sent the REQUEST.</summary>
    public bool LocallyInitiated { get; }

    /// <summary>The peer device's epoch when the connection started; any other epoch means the peer guest is gone.</summary>
    public long PeerEpoch { get; }

    /// <summary>The state.</summary>
    public SiblingFlowState State { get; set; }

    /// <summary>The connect deadline while <see cref="SiblingFlowState.Requested"/>, else 0.</summary>
    public long Deadline { get; set; }

    /// <summary>The peer guest's <c>buf_alloc</c>, from the last header delivered to the local guest.</summary>
    public uint PeerBufAlloc { get; set; }

    /// <summary>The peer guest's <c>fwd_cnt</c>, from the last header delivered to the local guest.</summary>
    public uint PeerFwdCnt { get; set; }

    /// <summary>Payload bytes the local guest sent (wrapping).</summary>
    public uint TxCnt { get; set; }

    /// <summary>Whether a payload of <paramref name="len"/> bytes fits in the credit the peer advertised.</summary>
    /// <param name="len">The payload length.</param>
    /// <returns><see langword="true"/> when the peer can take it.</returns>
    public bool HasCredit(uint len)
    {
        uint inFlight = TxCnt - PeerFwdCnt;
        return inFlight <= PeerBufAlloc && len <= PeerBufAlloc - inFlight;
    }
}
