namespace Virtio.Vsock.Device.Siblings;

/// <summary>
/// One device's place in a <see cref="VsockCidMap"/>: its CID and groups, the routes it sends on and receives
/// from, and its life state as other devices see it (online, and an epoch that grows at every reset).
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> the published route snapshots (replaced whole by the map under its lock, read by
/// anyone without one) and the state word. <b>Must never:</b> change its state from any thread but its
/// device's loop, or be mutated in place after publication (snapshots are immutable once written).</para>
/// <para>The epoch lets every reader tell packets and connections of an earlier life of the guest from the
/// current one without any cross-device call: a packet is stamped with both ends' epochs when queued, and
/// a connection remembers its peer's epoch when it starts.</para>
/// </remarks>
internal sealed class SiblingMember
{
    private readonly HashSet<string> _groups;
    private Dictionary<ulong, SiblingRoute> _outgoing = [];
    private SiblingRoute[] _incoming = [];

    // Bit 0: online; the rest: the epoch.
    private long _state;

    /// <summary>Creates a member (not yet published in the map).</summary>
    /// <param name="map">The map.</param>
    /// <param name="cid">The guest CID.</param>
    /// <param name="groups">The sibling groups.</param>
    /// <param name="relay">The device's relay.</param>
    public SiblingMember(VsockCidMap map, ulong cid, IReadOnlyCollection<string> groups, SiblingRelay relay)
    {
        Map = map;
        Cid = cid;
        _groups = new HashSet<string>(groups, StringComparer.Ordinal);
        Relay = relay;
    }

    /// <summary>The map.</summary>
    public VsockCidMap Map { get; }

    /// <summary>The guest CID.</summary>
    public ulong Cid { get; }

    /// <summary>The device's relay (runs on the device's loop).</summary>
    public SiblingRelay Relay { get; }

    /// <summary>The routes this device sends on, by destination CID (a snapshot; never mutated).</summary>
    public Dictionary<ulong, SiblingRoute> Outgoing => Volatile.Read(ref _outgoing);

    /// <summary>The routes this device receives from (a snapshot; never mutated).</summary>
    public SiblingRoute[] Incoming => Volatile.Read(ref _incoming);

    /// <summary>The current epoch: grows by one at every reset of the device.</summary>
    public long Epoch => Volatile.Read(ref _state) >> 1;

    /// <summary>Whether the guest's driver runs (memory set, RX and TX started): new connections to it are possible.</summary>
    public bool IsOnline => (Volatile.Read(ref _state) & 1) != 0;

    /// <summary>Whether this member and <paramref name="other"/> have a group in common.</summary>
    /// <param name="other">Another member.</param>
    /// <returns><see langword="true"/> when they may reach each other.</returns>
    public bool SharesGroupWith(SiblingMember other) => _groups.Overlaps(other._groups);

    /// <summary>Publishes new route snapshots (the map, under its lock).</summary>
    /// <param name="outgoing">Routes by destination CID.</param>
    /// <param name="incoming">Routes into this member.</param>
    public void Publish(Dictionary<ulong, SiblingRoute> outgoing, SiblingRoute[] incoming)
    {
        Volatile.Write(ref _outgoing, outgoing);
        Volatile.Write(ref _incoming, incoming);
    }

    /// <summary>Sets whether the guest's driver runs (device loop only).</summary>
    /// <param name="online">The new state.</param>
    public void SetOnline(bool online)
    {
        long state = _state;
        Volatile.Write(ref _state, online ? state | 1 : state & ~1L);
    }

    /// <summary>Starts a new epoch, offline or online (device loop only).</summary>
    /// <param name="online">Whether the device stays online (a transport reset) or not (a device reset).</param>
    /// <returns>The new epoch.</returns>
    public long BeginEpoch(bool online)
    {
        long epoch = (_state >> 1) + 1;
        Volatile.Write(ref _state, (epoch << 1) | (online ? 1L : 0L));
        return epoch;
    }
}
