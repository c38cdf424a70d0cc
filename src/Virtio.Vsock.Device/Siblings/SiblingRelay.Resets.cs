using Microsoft.Extensions.Logging;

namespace Virtio.Vsock.Device.Siblings;

// Resets and timers of the relay: the local device's reset (a new epoch), connect timeouts, and the RSTs owed to
// both guests when a connection cannot go on.
// Owns: the connection table's add/remove, the connect timers and the RST queues. Must never: answer an RST with
// an RST, or block when a route has no room (an RST that cannot be queued is counted and dropped).
internal sealed partial class SiblingRelay
{
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

    [LoggerMessage(EventId = 210, Level = LogLevel.Debug, Message = "vsock: sibling connection {LocalCid}:{LocalPort} <-> {PeerCid}:{PeerPort} reset: {Reason}")]
    private static partial void LogSiblingReset(ILogger logger, ulong localCid, uint localPort, ulong peerCid, uint peerPort, string reason);
}
