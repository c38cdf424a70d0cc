using System.Diagnostics;

namespace Virtio.Vsock.Device.Siblings;

// The receiving half of the relay: routes from sibling devices signal this device's loop, and their packets are
// admitted against the connection table and written into the local guest's RX buffers, split when they do not fit.
// Owns: the ready queue of routes and the RX-side checks. Must never: write past an RX buffer's capacity, deliver a
// packet of an earlier epoch of either guest, or keep a route in the ready queue once it is closed or empty.
internal sealed partial class SiblingRelay
{
    /// <summary>A route into this device was signalled (packets queued, or its source device reset); on the loop.</summary>
    /// <param name="route">The route.</param>
    public void OnRouteSignalled(SiblingRoute route)
    {
        if (route.IsClosed)
        {
            Interlocked.Add(ref Metrics.StalePacketsField, route.DiscardAll());
            ResetFlowsOf(route.Source, all: true);
            return;
        }

        long sourceEpoch = route.Source.Epoch;
        if (sourceEpoch != route.SeenSourceEpoch)
        {
            route.SeenSourceEpoch = sourceEpoch;
            ResetFlowsOf(route.Source, all: false);
        }

        if (route.Count > 0 && !route.InReadyQueue)
        {
            route.InReadyQueue = true;
            _ready.Enqueue(route);
        }
    }

    /// <summary>Fills one RX buffer with the next packet (or piece of a packet) from a sibling, or an RST owed to the local guest.</summary>
    /// <param name="rx">A parsed RX packet.</param>
    /// <returns>The used length, or 0 when nothing was ready.</returns>
    public uint FillRx(VsockPacket rx)
    {
        if (_localResets.TryDequeue(out VsockHeader reset))
        {
            rx.SetHeader(in reset);
            Interlocked.Increment(ref _muxer.Metrics.RstSentField);
            return VsockHeader.Size;
        }

        for (int budget = FillBudget; budget > 0 && _ready.TryPeek(out SiblingRoute? route); budget--)
        {
            if (route.IsClosed || route.Count == 0)
            {
                _ready.Dequeue();
                route.InReadyQueue = false;
                if (route.IsClosed)
                {
                    OnRouteSignalled(route);
                }

                continue;
            }

            ref SiblingPacket packet = ref route.Head();
            if (route.DeliveredOffset == 0 && !Admit(route, ref packet))
            {
                route.RemoveHead();
                continue;
            }

            uint used = Deliver(route, ref packet, rx);
            if (used == 0)
            {
                // The RX buffer could not take the payload (guest memory went away under it): the packet is
                // dropped and its connection reset on both sides; the buffer serves the next packet.
                VsockHeader failed = packet.Header;
                route.RemoveHead();
                if (_flows.TryGetValue(new SiblingFlowKey(failed.DstPort, failed.SrcCid, failed.SrcPort), out SiblingFlow? flow))
                {
                    Fail(flow, ref Metrics.ProtocolErrorsField, "payload could not be written to the RX buffer", resetLocal: true);
                }

                continue;
            }

            // Round robin between routes, one piece at a time.
            _ready.Dequeue();
            if (route.Count > 0)
            {
                _ready.Enqueue(route);
            }
            else
            {
                route.InReadyQueue = false;
            }

            return used;
        }

        if (_ready.TryPeek(out SiblingRoute? pending))
        {
            // Dropped a whole budget of packets: come back on the next turn rather than hog this one.
            pending.Notify();
        }

        return 0;
    }

    /// <summary>Checks a packet from a sibling before its first piece goes to the guest, updating the table.</summary>
    /// <returns><see langword="false"/> when the packet is dropped.</returns>
    private bool Admit(SiblingRoute route, ref SiblingPacket packet)
    {
        SiblingMember self = _member!;
        if (packet.SourceEpoch != route.Source.Epoch || packet.DestinationEpoch != self.Epoch)
        {
            Interlocked.Increment(ref Metrics.StalePacketsField);
            return false;
        }

        VsockHeader header = packet.Header;
        var key = new SiblingFlowKey(header.DstPort, header.SrcCid, header.SrcPort);
        if (_flows.TryGetValue(key, out SiblingFlow? flow) && !ReferenceEquals(flow.Route.Destination, route.Source))
        {
            Remove(flow);
            flow = null;
        }

        self.Outgoing.TryGetValue(header.SrcCid, out SiblingRoute? back);
        switch (header.Op)
        {
            case VsockOp.Request:
                if (flow is not null)
                {
                    Remove(flow);
                }

                if (back is null || !ReferenceEquals(back.Destination, route.Source))
                {
                    Interlocked.Increment(ref Metrics.StalePacketsField);
                    return false;
                }

                if (!_muxer.TypeAllowed(header.Type))
                {
                    Refuse(back, in header, packet.SourceEpoch);
                    return false;
                }

                if (_flows.Count + _localResets.Count >= _maxFlows)
                {
                    Interlocked.Increment(ref Metrics.FlowLimitField);
                    Refuse(back, in header, packet.SourceEpoch);
                    return false;
                }

                flow = new SiblingFlow(key, back, header.Type, locallyInitiated: false, packet.SourceEpoch)
                {
                    PeerBufAlloc = header.BufAlloc,
                    PeerFwdCnt = header.FwdCnt,
                };
                Add(flow, Stopwatch.GetTimestamp());
                return true;
            case VsockOp.Rst:
                if (flow is null)
                {
                    return false;
                }

                Remove(flow);
                return true;
        }

        if (flow is null)
        {
            if (back is not null && ReferenceEquals(back.Destination, route.Source))
            {
                Refuse(back, in header, packet.SourceEpoch);
            }

            return false;
        }

        if (flow.Type != header.Type)
        {
            Fail(flow, ref Metrics.ProtocolErrorsField, "protocol error", resetLocal: true);
            return false;
        }

        flow.PeerBufAlloc = header.BufAlloc;
        flow.PeerFwdCnt = header.FwdCnt;
        switch (header.Op)
        {
            case VsockOp.Response when flow.State == SiblingFlowState.Requested && flow.LocallyInitiated:
                flow.State = SiblingFlowState.Established;
                flow.Deadline = 0;
                return true;
            case VsockOp.Rw or VsockOp.Shutdown or VsockOp.CreditUpdate or VsockOp.CreditRequest when flow.State == SiblingFlowState.Established:
                return true;
            default:
                Fail(flow, ref Metrics.ProtocolErrorsField, "protocol error", resetLocal: true);
                return false;
        }
    }

    /// <summary>Writes the head packet, or its next piece, into <paramref name="rx"/>.</summary>
    private uint Deliver(SiblingRoute route, ref SiblingPacket packet, VsockPacket rx)
    {
        VsockHeader header = packet.Header;
        int total = (int)header.Len;
        int offset = route.DeliveredOffset;
        int chunk = Math.Min(total - offset, rx.DataCapacity);
        bool last = offset + chunk == total;
        if (!last)
        {
            header.Flags &= ~(uint)(SeqPacketFlags.EndOfMessage | SeqPacketFlags.EndOfRecord);
        }

        header.Len = (uint)chunk;
        if (chunk > 0 && rx.CopyDataFrom(packet.Payload.AsSpan(offset, chunk)).IsError)
        {
            return 0;
        }

        rx.SetHeader(in header);
        SiblingLog.Delivered(_logger, in header);
        if (last)
        {
            Interlocked.Increment(ref Metrics.PacketsDeliveredField);
            Interlocked.Add(ref Metrics.BytesDeliveredField, total);
            route.RemoveHead();
        }
        else
        {
            route.DeliveredOffset = offset + chunk;
        }

        return (uint)(VsockHeader.Size + chunk);
    }
}
