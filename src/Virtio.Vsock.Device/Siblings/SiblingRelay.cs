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
/// <para><b>Files.</b> This file holds the relay's state, membership and construction; <c>SiblingRelay.Tx.cs</c> the
/// local guest's packets on their way out (including the access check on REQUEST), <c>SiblingRelay.Rx.cs</c> packets
/// from siblings on their way into the RX queue, <c>SiblingRelay.Resets.cs</c> the connection table's resets and
/// timers.</para>
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
}
