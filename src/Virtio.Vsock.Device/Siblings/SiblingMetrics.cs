namespace Virtio.Vsock.Device.Siblings;

/// <summary>
/// Counters of one device's sibling traffic (guest to guest). Written only by the device's loop thread; any
/// thread may read them at any time, one by one (not as an atomic snapshot). Values only grow, except
/// <see cref="QueuedBytes"/>, which is the current total.
/// </summary>
public sealed class SiblingMetrics
{
    internal long PacketsSentField;
    internal long BytesSentField;
    internal long PacketsDeliveredField;
    internal long BytesDeliveredField;
    internal long UnreachableField;
    internal long RouteFullField;
    internal long CreditViolationsField;
    internal long ProtocolErrorsField;
    internal long FlowLimitField;
    internal long ConnectTimeoutsField;
    internal long PeerResetFlowsField;
    internal long StalePacketsField;
    internal long RstToPeerDroppedField;
    internal long PeakQueuedBytesField;
    internal long AccessDeniedField;
    private readonly Func<long> _queuedBytes;

    internal SiblingMetrics(Func<long> queuedBytes)
    {
        _queuedBytes = queuedBytes;
    }

    /// <summary>Packets the local guest sent to sibling guests that were queued for them.</summary>
    public long PacketsSent => Volatile.Read(ref PacketsSentField);

    /// <summary>Payload bytes of <see cref="PacketsSent"/>.</summary>
    public long BytesSent => Volatile.Read(ref BytesSentField);

    /// <summary>Packets from sibling guests written to the local guest's RX queue (a packet split over several RX buffers counts once).</summary>
    public long PacketsDelivered => Volatile.Read(ref PacketsDeliveredField);

    /// <summary>Payload bytes of <see cref="PacketsDelivered"/>.</summary>
    public long BytesDelivered => Volatile.Read(ref BytesDeliveredField);

    /// <summary>Packets for a CID that is not a reachable sibling (unknown, no common group, not running): answered with RST.</summary>
    public long Unreachable => Volatile.Read(ref UnreachableField);

    /// <summary>Connection requests to a reachable sibling refused by the access rules (<see cref="VsockCidMap.Access"/>): answered with RST.</summary>
    public long AccessDenied => Volatile.Read(ref AccessDeniedField);

    /// <summary>Connections reset because the route to the peer was full (the peer's guest did not take its RX packets).</summary>
    public long RouteFull => Volatile.Read(ref RouteFullField);

    /// <summary>Connections reset because the local guest sent more than the peer guest's credit.</summary>
    public long CreditViolations => Volatile.Read(ref CreditViolationsField);

    /// <summary>Connections reset because a packet broke the state machine (data before RESPONSE, wrong type, ...).</summary>
    public long ProtocolErrors => Volatile.Read(ref ProtocolErrorsField);

    /// <summary>Connection requests refused because the device tracks its connection limit of sibling connections.</summary>
    public long FlowLimit => Volatile.Read(ref FlowLimitField);

    /// <summary>Connections reset because the REQUEST was not answered in time.</summary>
    public long ConnectTimeouts => Volatile.Read(ref ConnectTimeoutsField);

    /// <summary>Connections of the local guest reset because the peer device was reset (its VM stopped or restarted).</summary>
    public long PeerResetFlows => Volatile.Read(ref PeerResetFlowsField);

    /// <summary>Queued packets dropped because one of the two devices was reset after they were queued.</summary>
    public long StalePackets => Volatile.Read(ref StalePacketsField);

    /// <summary>RSTs for a sibling guest that could not be queued (its route was full even in the reserved slots).</summary>
    public long RstToPeerDropped => Volatile.Read(ref RstToPeerDroppedField);

    /// <summary>The most payload bytes the local guest ever had queued for one sibling at once.</summary>
    public long PeakQueuedBytes => Volatile.Read(ref PeakQueuedBytesField);

    /// <summary>Payload bytes the local guest has queued for its siblings now (on all routes).</summary>
    public long QueuedBytes => _queuedBytes();
}
