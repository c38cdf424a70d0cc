using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Virtio.Vsock.Device.Siblings;

/// <summary>
/// One device's side of sibling communication: sends its guest's packets for sibling CIDs down the routes of
/// the <see cref="VsockCidMap"/>, writes packets arriving on its incoming routes into its guest's RX queue with
/// their headers unchanged, and keeps a small table of the guest's sibling connections so that it can apply
/// the vsock RST rules and reset both ends when a connection cannot go on.
/// </summary>
/// <remarks>
/// <para><b>Relaying.</b> Credit is end to end: the two guests' <c>buf_alloc</c>/<c>fwd_cnt</c> pass through
/// untouched. A packet that does not fit one RX buffer of the receiving guest is written into several, each
/// with the same header but its own <c>len</c>; SEQPACKET's EOM/EOR stay on the last piece only.</para>
/// <para><b>RST rules.</b> A packet for a CID that is not a reachable sibling (unknown, no common group, device
/// not running for a REQUEST) gets RST, as does any packet of a connection the table does not know (never an
/// RST). The sending side checks each packet against the state machine and the credit the receiving guest
/// advertised (this device delivered every header that guest sent, so its view is never older than its own
/// guest's); a violation resets the connection on both sides, as for host connections.</para>
/// <para><b>Bounded memory.</b> What one guest can make the process hold for another is bounded by the route
/// (<see cref="VsockCidMap.MaxQueuedBytesPerRoute"/>, <see cref="VsockCidMap.MaxQueuedPacketsPerRoute"/>). A packet that
/// does not fit resets its connection on both sides (RST to the sender now; to the receiver through slots the
/// route reserves for RSTs). The sender's TX queue never waits for another guest: a guest that stops taking
/// RX buffers, or advertises credit it never drains, cannot stall its siblings' traffic to the host or to
/// other siblings, and two busy guests cannot wait on each other. Well-behaved guests stay far below the
/// bound: a route holds only what the receiving driver has not taken yet, and each connection at most the
/// credit the receiver advertised. The connection table is capped at the device's connection limit.</para>
/// <para><b>Resets.</b> When this device resets (its VMM went away) it starts a new epoch and wakes every
/// sibling: they reset their guests' connections with this guest and drop packets queued for or from its
/// earlier life. A transport reset does the same while staying online.</para>
/// <para><b>Owns:</b> the connection table, the queue of RSTs owed to the local guest, the queue of incoming
/// routes with packets, the connect timers, the membership and the <see cref="SiblingMetrics"/>.</para>
/// <para><b>Must never:</b> run on any thread but its device's loop; call into another device except by queuing
/// on a route and waking that device's loop (no locks, no waiting: the lock-order deadlock between two VM
/// threads that rust-vmm shipped cannot happen here); allocate on the per-packet path beyond pooled payload
/// copies; answer an RST with an RST.</para>
/// </remarks>
internal sealed partial class SiblingRelay
{
    private const int FillBudget = 4096;

    private readonly Dictionary<SiblingFlowKey, SiblingFlow> _flows = [];
    private readonly Queue<SiblingRoute> _ready = new();
    private readonly Queue<VsockHeader> _localResets = new();
    private readonly DeadlineQueue<SiblingFlow> _timers = new(static (flow, deadline) => flow.State == SiblingFlowState.Requested && flow.Deadline == deadline);
    private readonly List<SiblingFlow> _scratch = [];
    private readonly VsockMuxer _muxer;
    private readonly VsockCidMap _map;
    private readonly ILogger? _logger;
    private readonly int _maxFlows;
    private readonly long _connectTimeoutTicks;
    private SiblingMember? _member;

    /// <summary>Creates the relay (not yet in the map: see <see cref="Join"/>).</summary>
    /// <param name="map">The CID map.</param>
    /// <param name="muxer">The device's muxer (negotiated socket types, RST counters).</param>
    /// <param name="loop">The device's loop.</param>
    public SiblingRelay(VsockCidMap map, VsockMuxer muxer, DeviceEventLoop loop)
    {
        _map = map;
        _muxer = muxer;
        Loop = loop;
        _maxFlows = muxer.Options.MaxConnections;
        _logger = muxer.Options.Logger;
        _connectTimeoutTicks = (long)(map.ConnectTimeout.TotalSeconds * Stopwatch.Frequency);
        Metrics = new SiblingMetrics(QueuedBytes);
    }

    /// <summary>The device's loop.</summary>
    public DeviceEventLoop Loop { get; }

    /// <summary>The counters.</summary>
    public SiblingMetrics Metrics { get; }

    /// <summary>Live sibling connections (loop only).</summary>
    public int FlowCount => _flows.Count;

    /// <summary>Whether anything waits for an RX buffer.</summary>
    public bool HasRxWork => _localResets.Count > 0 || _ready.Count > 0;

    /// <summary>The earliest connect deadline, or <see cref="long.MaxValue"/>.</summary>
    public long NextDeadline => _timers.NextDeadline;

    /// <summary>The device's buffer budget, charged for the payloads its guest queues on routes.</summary>
    public BufferBudget Budget => _muxer.Budget;

    /// <summary>Joins the map (before the loop starts).</summary>
    /// <param name="cid">The guest CID.</param>
    /// <param name="groups">The sibling groups.</param>
    /// <exception cref="InvalidOperationException">The CID is taken in the map.</exception>
    public void Join(ulong cid, IReadOnlyCollection<string> groups) => _member = _map.Join(cid, groups, this);

    /// <summary>Leaves the map (after the device's last reset).</summary>
    public void Leave()
    {
        if (_member is not null)
        {
            _map.Leave(_member);
        }
    }

    /// <summary>Sets whether the guest's driver runs, so siblings may open connections to it.</summary>
    /// <param name="online">The new state.</param>
    public void SetOnline(bool online) => _member?.SetOnline(online);

    // ---------------------------------------------------------------- TX: the local guest sends

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

    // ---------------------------------------------------------------- RX: packets from siblings

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

    // ---------------------------------------------------------------- resets and timers

    /// <summary>This device was reset (device reset, or transport reset if <paramref name="online"/>): its guest's
    /// connections are gone. Starts a new epoch, drops the table and what is queued for the guest, and wakes
    /// every sibling so it resets its guest's side of those connections.</summary>
    /// <param name="online">Whether the device stays online (transport reset).</param>
    public void OnLocalReset(bool online)
    {
        SiblingMember? self = _member;
        if (self is null)
        {
            return;
        }

        self.BeginEpoch(online);
        _flows.Clear();
        _timers.Clear();
        _localResets.Clear();
        while (_ready.TryDequeue(out SiblingRoute? route))
        {
            route.InReadyQueue = false;
        }

        foreach (SiblingRoute route in self.Incoming)
        {
            Interlocked.Add(ref Metrics.StalePacketsField, route.DiscardAll());
            route.SeenSourceEpoch = route.Source.Epoch;
        }

        foreach (SiblingRoute route in self.Outgoing.Values)
        {
            route.Notify();
        }
    }

    /// <summary>Fires due connect timers: both guests get RST.</summary>
    /// <param name="now">The current timestamp.</param>
    public void RunTimers(long now)
    {
        while (_timers.TryTakeDue(now, out SiblingFlow flow))
        {
            Fail(flow, ref Metrics.ConnectTimeoutsField, "connect timeout", resetLocal: true);
        }
    }

    private void Add(SiblingFlow flow, long now)
    {
        flow.Deadline = now + _connectTimeoutTicks;
        _flows[flow.Key] = flow;
        SiblingLog.Opened(_logger, _member?.Cid ?? 0, flow.Key, flow.Type, flow.LocallyInitiated);
        _timers.Add(flow, flow.Deadline, _flows.Count);
    }

    private void Remove(SiblingFlow flow)
    {
        if (_flows.TryGetValue(flow.Key, out SiblingFlow? current) && ReferenceEquals(current, flow))
        {
            _flows.Remove(flow.Key);
        }

        SiblingLog.Closed(_logger, _member?.Cid ?? 0, flow.Key, flow.State);
        flow.State = SiblingFlowState.Closed;
        flow.Deadline = 0;
    }

    /// <summary>Resets a connection: removed from the table, RST to the peer guest, and to the local guest if asked
    /// (on the TX path the muxer answers the offending packet instead).</summary>
    private void Fail(SiblingFlow flow, ref long counter, string reason, bool resetLocal)
    {
        Interlocked.Increment(ref counter);
        if (_logger is not null)
        {
            LogSiblingReset(_logger, _member!.Cid, flow.Key.LocalPort, flow.Key.PeerCid, flow.Key.PeerPort, reason);
        }
        Remove(flow);
        ResetPeer(flow);
        if (resetLocal)
        {
            QueueLocalReset(flow);
        }
    }

    private void ResetPeer(SiblingFlow flow)
    {
        SiblingRoute route = flow.Route;
        if (route.IsClosed || flow.PeerEpoch != route.Destination.Epoch)
        {
            return;
        }

        SiblingMember self = _member!;
        var header = new VsockHeader
        {
            SrcCid = self.Cid,
            DstCid = flow.Key.PeerCid,
            SrcPort = flow.Key.LocalPort,
            DstPort = flow.Key.PeerPort,
            Type = flow.Type,
            Op = VsockOp.Rst,
        };
        Send(route, in header, flow.PeerEpoch);
    }

    /// <summary>Answers a packet from a sibling with RST (unknown connection, type not negotiated, limit).</summary>
    private void Refuse(SiblingRoute back, in VsockHeader offending, long peerEpoch)
    {
        if (offending.Op == VsockOp.Rst)
        {
            return;
        }

        var header = new VsockHeader
        {
            SrcCid = offending.DstCid,
            DstCid = offending.SrcCid,
            SrcPort = offending.DstPort,
            DstPort = offending.SrcPort,
            Type = offending.Type,
            Op = VsockOp.Rst,
        };
        Send(back, in header, peerEpoch);
    }

    private void Send(SiblingRoute route, in VsockHeader header, long peerEpoch)
    {
        if (route.TryEnqueueControl(in header, _member!.Epoch, peerEpoch))
        {
            route.Notify();
        }
        else
        {
            Interlocked.Increment(ref Metrics.RstToPeerDroppedField);
        }
    }

    private void QueueLocalReset(SiblingFlow flow) => _localResets.Enqueue(new VsockHeader
    {
        SrcCid = flow.Key.PeerCid,
        DstCid = _member!.Cid,
        SrcPort = flow.Key.PeerPort,
        DstPort = flow.Key.LocalPort,
        Type = flow.Type,
        Op = VsockOp.Rst,
    });

    /// <summary>Resets the local guest's connections with <paramref name="peer"/> from an earlier epoch (or all of them).</summary>
    private void ResetFlowsOf(SiblingMember peer, bool all)
    {
        long epoch = peer.Epoch;
        foreach (SiblingFlow flow in _flows.Values)
        {
            if (ReferenceEquals(flow.Route.Destination, peer) && (all || flow.PeerEpoch != epoch))
            {
                _scratch.Add(flow);
            }
        }

        foreach (SiblingFlow flow in _scratch)
        {
            Remove(flow);
            QueueLocalReset(flow);
            Interlocked.Increment(ref Metrics.PeerResetFlowsField);
        }

        _scratch.Clear();
    }

    private long QueuedBytes()
    {
        long total = 0;
        SiblingMember? self = Volatile.Read(ref _member);
        if (self is not null)
        {
            foreach (SiblingRoute route in self.Outgoing.Values)
            {
                total += route.QueuedBytes;
            }
        }

        return total;
    }

    [LoggerMessage(EventId = 210, Level = LogLevel.Debug, Message = "vsock: sibling connection {LocalCid}:{LocalPort} <-> {PeerCid}:{PeerPort} reset: {Reason}")]
    private static partial void LogSiblingReset(ILogger logger, ulong localCid, uint localPort, ulong peerCid, uint peerPort, string reason);
}
