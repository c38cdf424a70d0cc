using Microsoft.Extensions.Logging;

namespace Virtio.Vsock.Device.Siblings;

// The sending half of the relay: a packet the local guest sent to a sibling CID is checked (route, access rules on
// REQUEST, connection state, the peer's credit) and queued on the route to the peer's device.
// Owns: the TX-side checks and their counters. Must never: wait for the peer device or call into it (it only
// queues and wakes), or answer the offending packet itself (the muxer sends the RST when HandleTx says false).
internal sealed partial class SiblingRelay
{
    /// <summary>Handles a packet the local guest sent to a CID other than the host's.</summary>
    /// <param name="packet">The packet (source CID and type already checked).</param>
    /// <param name="now">The current timestamp.</param>
    /// <returns><see langword="false"/> when the packet must be answered with RST (the muxer does, unless it is an RST).</returns>
    public bool HandleTx(VsockPacket packet, long now)
    {
        SiblingMember? self = _member;
        SiblingLog.Outgoing(_logger, packet);
        if (self is null || !self.Outgoing.TryGetValue(packet.DstCid, out SiblingRoute? route))
        {
            Interlocked.Increment(ref Metrics.UnreachableField);
            return false;
        }

        SiblingMember peer = route.Destination;
        var key = new SiblingFlowKey(packet.SrcPort, packet.DstCid, packet.DstPort);
        _flows.TryGetValue(key, out SiblingFlow? flow);
        VsockOp op = packet.Op;
        if (op == VsockOp.Request)
        {
            if (flow is not null)
            {
                // The guest reuses the ports of a connection it gave up: the new one replaces it.
                Remove(flow);
            }

            if (!_map.Access.Allows(self.Cid, packet.DstCid))
            {
                // Refused by the access rules: the same RST as a port nobody listens on.
                Interlocked.Increment(ref Metrics.AccessDeniedField);
                if (_logger is not null)
                {
                    LogSiblingAccessDenied(_logger, self.Cid, packet.SrcPort, packet.DstCid, packet.DstPort);
                }

                return false;
            }

            long peerEpoch = peer.Epoch;
            if (!peer.IsOnline)
            {
                Interlocked.Increment(ref Metrics.UnreachableField);
                return false;
            }

            if (_flows.Count + _localResets.Count >= _maxFlows)
            {
                Interlocked.Increment(ref Metrics.FlowLimitField);
                return false;
            }

            if (!Forward(route, packet, self, peerEpoch))
            {
                Interlocked.Increment(ref Metrics.RouteFullField);
                return false;
            }

            Add(new SiblingFlow(key, route, packet.Type, locallyInitiated: true, peerEpoch), now);
            return true;
        }

        if (op == VsockOp.Rst)
        {
            if (flow is not null)
            {
                Remove(flow);
                if (IsCurrent(flow, route) && !Forward(route, packet, self, flow.PeerEpoch))
                {
                    ResetPeer(flow);
                }
            }

            return true;
        }

        if (flow is null)
        {
            return false;
        }

        if (!IsCurrent(flow, route))
        {
            // The peer guest is gone (its device reset): its connections are over.
            Remove(flow);
            Interlocked.Increment(ref Metrics.PeerResetFlowsField);
            return false;
        }

        if (flow.Type != packet.Type)
        {
            Fail(flow, ref Metrics.ProtocolErrorsField, "protocol error", resetLocal: false);
            return false;
        }

        switch (op)
        {
            case VsockOp.Response:
                if (flow.State != SiblingFlowState.Requested || flow.LocallyInitiated)
                {
                    Fail(flow, ref Metrics.ProtocolErrorsField, "protocol error", resetLocal: false);
                    return false;
                }

                flow.State = SiblingFlowState.Established;
                flow.Deadline = 0;
                break;
            case VsockOp.Rw:
                if (flow.State != SiblingFlowState.Established)
                {
                    Fail(flow, ref Metrics.ProtocolErrorsField, "protocol error", resetLocal: false);
                    return false;
                }

                if (!flow.HasCredit(packet.Len))
                {
                    Fail(flow, ref Metrics.CreditViolationsField, "sent beyond the peer's credit", resetLocal: false);
                    return false;
                }

                flow.TxCnt += packet.Len;
                break;
            case VsockOp.Shutdown or VsockOp.CreditUpdate or VsockOp.CreditRequest:
                if (flow.State != SiblingFlowState.Established)
                {
                    Fail(flow, ref Metrics.ProtocolErrorsField, "protocol error", resetLocal: false);
                    return false;
                }

                break;
            default:
                Fail(flow, ref Metrics.ProtocolErrorsField, "protocol error", resetLocal: false);
                return false;
        }

        if (!Forward(route, packet, self, flow.PeerEpoch))
        {
            Fail(flow, ref Metrics.RouteFullField, "route to the peer full", resetLocal: false);
            return false;
        }

        return true;
    }

    private bool Forward(SiblingRoute route, VsockPacket packet, SiblingMember self, long peerEpoch)
    {
        if (!route.TryEnqueue(packet, self.Epoch, peerEpoch))
        {
            return false;
        }

        Interlocked.Increment(ref Metrics.PacketsSentField);
        Interlocked.Add(ref Metrics.BytesSentField, packet.Len);
        long queued = route.QueuedBytes;
        if (queued > Metrics.PeakQueuedBytesField)
        {
            Volatile.Write(ref Metrics.PeakQueuedBytesField, queued);
        }

        route.Notify();
        return true;
    }

    private static bool IsCurrent(SiblingFlow flow, SiblingRoute route) =>
        ReferenceEquals(flow.Route, route) && flow.PeerEpoch == route.Destination.Epoch && !route.IsClosed;

    [LoggerMessage(EventId = 211, Level = LogLevel.Debug, Message = "vsock: sibling connection {LocalCid}:{LocalPort} -> {PeerCid}:{PeerPort} denied by the access rules")]
    private static partial void LogSiblingAccessDenied(ILogger logger, ulong localCid, uint localPort, ulong peerCid, uint peerPort);
}
