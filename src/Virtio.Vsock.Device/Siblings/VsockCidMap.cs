namespace Virtio.Vsock.Device.Siblings;

/// <summary>
/// The directory of the devices whose guests may reach each other by CID (sibling communication): every
/// device created with this map in <see cref="VsockDeviceOptions.Siblings"/> joins it under its guest CID and
/// sibling groups, and two guests with a group in common reach each other as if they were peers on one
/// vsock transport. One map per process (or per isolation domain); devices with different maps never meet.
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> the members (one per guest CID), and for every ordered pair of members with a group in
/// common one <see cref="SiblingRoute"/>: a bounded single-producer, single-consumer packet queue from the
/// first device's loop to the second's. Routes are created when a member joins and dropped when it leaves;
/// each member's outgoing and incoming routes are published as immutable snapshots, so the data path reads
/// them without a lock.</para>
/// <para><b>Limits:</b> <see cref="MaxQueuedBytesPerRoute"/> and <see cref="MaxQueuedPacketsPerRoute"/> bound
/// what one guest can make the process hold for another; see <see cref="SiblingRelay"/> for what happens when
/// a route is full.</para>
/// <para><b>Must never:</b> hold its lock while calling into a device (joining and leaving only build and
/// publish snapshots; a device learns about a peer's reset through the route, on its own loop), or be used
/// by the data path for anything but reading published snapshots.</para>
/// </remarks>
public sealed class VsockCidMap
{
    /// <summary>The group of a guest that names none (the daemon's default, as in rust-vmm's vhost-device-vsock).</summary>
    public const string DefaultGroup = "default";

    private readonly Lock _sync = new();
    private Dictionary<ulong, SiblingMember> _members = [];

    /// <summary>Creates an empty map.</summary>
    public VsockCidMap()
    {
    }

    /// <summary>The most payload bytes queued on one route (from one guest to another) and not yet written to
    /// the receiving guest's RX queue. Default 4 MiB; 64 KiB to 1 GiB.</summary>
    public int MaxQueuedBytesPerRoute { get; init; } = 4 * 1024 * 1024;

    /// <summary>The most packets queued on one route. Default 1024; 16 to 65536.</summary>
    public int MaxQueuedPacketsPerRoute { get; init; } = 1024;

    /// <summary>How long a connection between two guests may stay unanswered (REQUEST without RESPONSE) before
    /// both guests get RST. Default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Which pairs of guests with a group in common may open connections to each other (default: all).
    /// Checked on every REQUEST from one guest to another; a refused one gets RST like a port nobody listens on.</summary>
    public SiblingAccessRules Access { get; init; } = SiblingAccessRules.AllowAll;

    /// <summary>RSTs a route can always take beyond <see cref="MaxQueuedPacketsPerRoute"/>, so a device can tell
    /// a peer that it reset a connection even while the route is full of data.</summary>
    internal const int ReservedResets = 64;

    /// <summary>The guest CIDs of the devices in the map now.</summary>
    public IReadOnlyCollection<ulong> Cids
    {
        get
        {
            Dictionary<ulong, SiblingMember> members = Volatile.Read(ref _members);
            return [.. members.Keys];
        }
    }

    /// <summary>Whether a device with guest CID <paramref name="cid"/> is in the map.</summary>
    /// <param name="cid">A guest CID.</param>
    /// <returns><see langword="true"/> when a device joined under that CID and has not left.</returns>
    public bool Contains(ulong cid) => Volatile.Read(ref _members).ContainsKey(cid);

    /// <summary>Whether the guest with CID <paramref name="from"/> may reach the guest with CID <paramref name="to"/>:
    /// both are in the map, they differ, and they have a group in common.</summary>
    /// <param name="from">The sending guest's CID.</param>
    /// <param name="to">The receiving guest's CID.</param>
    /// <returns><see langword="true"/> when a route exists.</returns>
    public bool CanReach(ulong from, ulong to) =>
        Volatile.Read(ref _members).TryGetValue(from, out SiblingMember? member) && member.Outgoing.ContainsKey(to);

    /// <summary>Whether the guest with CID <paramref name="from"/> may open a connection to the guest with CID
    /// <paramref name="to"/>: <see cref="CanReach"/>, and <see cref="Access"/> allows the pair.</summary>
    /// <param name="from">The connecting guest's CID.</param>
    /// <param name="to">The other guest's CID.</param>
    /// <returns><see langword="true"/> when a REQUEST would be relayed.</returns>
    public bool MayConnect(ulong from, ulong to) => CanReach(from, to) && Access.Allows(from, to);

    /// <summary>Adds a device: creates the routes to and from every member it shares a group with.</summary>
    /// <param name="cid">The device's guest CID.</param>
    /// <param name="groups">Its groups (validated by the device options).</param>
    /// <param name="relay">Its relay, which consumes its incoming routes on its loop.</param>
    /// <returns>The membership, for <see cref="Leave"/>.</returns>
    /// <exception cref="InvalidOperationException">Another device already joined with this CID.</exception>
    internal SiblingMember Join(ulong cid, IReadOnlyCollection<string> groups, SiblingRelay relay)
    {
        Validate();
        var member = new SiblingMember(this, cid, groups, relay);
        lock (_sync)
        {
            if (_members.ContainsKey(cid))
            {
                throw new InvalidOperationException($"A vsock device with guest CID {cid} is already in this CID map.");
            }

            var outgoing = new Dictionary<ulong, SiblingRoute>();
            var incoming = new List<SiblingRoute>();
            foreach (SiblingMember other in _members.Values)
            {
                if (!member.SharesGroupWith(other))
                {
                    continue;
                }

                var toOther = new SiblingRoute(member, other, MaxQueuedBytesPerRoute, MaxQueuedPacketsPerRoute, ReservedResets);
                var fromOther = new SiblingRoute(other, member, MaxQueuedBytesPerRoute, MaxQueuedPacketsPerRoute, ReservedResets);
                outgoing.Add(other.Cid, toOther);
                incoming.Add(fromOther);
                other.Publish(
                    new Dictionary<ulong, SiblingRoute>(other.Outgoing) { [cid] = fromOther },
                    [.. other.Incoming, toOther]);
            }

            member.Publish(outgoing, [.. incoming]);
            Volatile.Write(ref _members, new Dictionary<ulong, SiblingMember>(_members) { [cid] = member });
        }

        return member;
    }

    /// <summary>Removes a device and every route to or from it. Its peers learned about its last reset through
    /// the routes already; packets still queued on a dropped route are discarded by whoever reads them.</summary>
    /// <param name="member">The membership <see cref="Join"/> returned.</param>
    internal void Leave(SiblingMember member)
    {
        SiblingRoute[] closed;
        lock (_sync)
        {
            if (!_members.TryGetValue(member.Cid, out SiblingMember? current) || !ReferenceEquals(current, member))
            {
                return;
            }

            var members = new Dictionary<ulong, SiblingMember>(_members);
            members.Remove(member.Cid);
            foreach (SiblingMember other in members.Values)
            {
                if (!other.Outgoing.ContainsKey(member.Cid))
                {
                    continue;
                }

                var outgoing = new Dictionary<ulong, SiblingRoute>(other.Outgoing);
                outgoing.Remove(member.Cid);
                other.Publish(outgoing, [.. other.Incoming.Where(route => !ReferenceEquals(route.Source, member))]);
            }

            closed = [.. member.Outgoing.Values, .. member.Incoming];
            member.Publish([], []);
            Volatile.Write(ref _members, members);
        }

        // Outside the lock: wake the other ends so they drop what is queued and reset their guests' connections.
        foreach (SiblingRoute route in closed)
        {
            route.Close();
        }
    }

    private void Validate()
    {
        if (MaxQueuedBytesPerRoute < 64 * 1024 || MaxQueuedBytesPerRoute > 1024 * 1024 * 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxQueuedBytesPerRoute), MaxQueuedBytesPerRoute, "Must be 64 KiB to 1 GiB.");
        }

        if (MaxQueuedPacketsPerRoute < 16 || MaxQueuedPacketsPerRoute > 65536)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxQueuedPacketsPerRoute), MaxQueuedPacketsPerRoute, "Must be 16 to 65536.");
        }

        if (ConnectTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(ConnectTimeout), ConnectTimeout, "Must be positive.");
        }
    }
}
