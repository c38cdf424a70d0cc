using System.Collections.Frozen;

namespace Virtio.Vsock.Device.Siblings;

/// <summary>
/// Which pairs of sibling guests may open connections to each other, on top of the groups of the
/// <see cref="VsockCidMap"/>: a guest with an entry talks only with the CIDs it lists, a guest without one with
/// every sibling of its groups, and a pair may connect only when both ends allow it (whoever sends the REQUEST).
/// A refused REQUEST gets RST, as when nobody listens, and is counted in <see cref="SiblingMetrics.AccessDenied"/>.
/// </summary>
/// <remarks>Immutable after construction and read without a lock by every device's loop. <b>Owns:</b> the
/// per-CID peer sets. <b>Must never:</b> allocate when asked (it is asked once per sibling REQUEST), or widen what
/// the groups allow (a pair without a common group has no route at all).</remarks>
public sealed class SiblingAccessRules
{
    private readonly FrozenDictionary<ulong, FrozenSet<ulong>> _peers;

    /// <summary>Creates the rules.</summary>
    /// <param name="peersByCid">For each guest CID with rules, the sibling CIDs it may talk with (an empty set: none).</param>
    public SiblingAccessRules(IReadOnlyDictionary<ulong, IReadOnlyCollection<ulong>> peersByCid)
    {
        ArgumentNullException.ThrowIfNull(peersByCid);
        _peers = peersByCid.ToFrozenDictionary(entry => entry.Key, entry => entry.Value.ToFrozenSet());
    }

    /// <summary>No rule: every pair with a group in common may talk.</summary>
    public static SiblingAccessRules AllowAll { get; } = new(new Dictionary<ulong, IReadOnlyCollection<ulong>>());

    /// <summary>Whether no guest has rules.</summary>
    public bool IsEmpty => _peers.Count == 0;

    /// <summary>Whether the guests <paramref name="first"/> and <paramref name="second"/> may open connections to each
    /// other (in either direction): each one's rules, if it has any, name the other.</summary>
    /// <param name="first">One guest CID.</param>
    /// <param name="second">The other guest CID.</param>
    /// <returns><see langword="true"/> when both allow the pair.</returns>
    public bool Allows(ulong first, ulong second) => Side(first, second) && Side(second, first);

    /// <summary>The sibling CIDs a guest may talk with, or <see langword="null"/> when it has no rules (every sibling).</summary>
    /// <param name="cid">The guest CID.</param>
    /// <returns>The CIDs its rules name.</returns>
    public IReadOnlySet<ulong>? PeersOf(ulong cid) => _peers.TryGetValue(cid, out FrozenSet<ulong>? peers) ? peers : null;

    private bool Side(ulong from, ulong to) => !_peers.TryGetValue(from, out FrozenSet<ulong>? peers) || peers.Contains(to);
}
