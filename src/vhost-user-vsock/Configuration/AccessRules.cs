using System.Collections.Immutable;
using Virtio.Vsock.Backends.Unix.Access;

namespace VhostUserVsock.Configuration;

/// <summary>
/// Access rules as the daemon's configuration holds them (<c>--allow</c> for every VM, a VM's <c>allow</c> list in
/// the config file for that VM): host ports the guest may connect to (<c>guest-to-host</c>), guest ports host
/// programs may connect to (<c>host-to-guest</c>, optionally only for a uid/gid) and the sibling guests it may
/// talk with (<c>sibling</c>). Each direction without a rule allows everything; once it has one, only what a rule
/// allows passes. Rules from several places add up (<see cref="Union"/>): each rule is an allowance.
/// Owns values only; must never enforce them (the Unix backend and the sibling relay do).
/// </summary>
public sealed record AccessRules
{
    /// <summary>No rule: everything allowed.</summary>
    public static AccessRules None { get; } = new();

    /// <summary>Host ports the guest may connect to (empty: all).</summary>
    public ImmutableArray<PortRange> GuestToHost { get; init; } = [];

    /// <summary>Guest ports host programs may connect to, with their conditions (empty: all).</summary>
    public ImmutableArray<HostToGuestRule> HostToGuest { get; init; } = [];

    /// <summary>The sibling guest CIDs this guest may talk with, in either direction (empty: every sibling of its groups).</summary>
    public ImmutableSortedSet<ulong> Siblings { get; init; } = [];

    /// <summary>Whether no direction has a rule.</summary>
    public bool IsEmpty => GuestToHost.IsEmpty && HostToGuest.IsEmpty && Siblings.IsEmpty;

    /// <summary>The rules of both: per direction, what either allows (a direction restricted by one stays restricted).</summary>
    /// <param name="other">More rules, or <see langword="null"/>.</param>
    /// <returns>The combined rules.</returns>
    public AccessRules Union(AccessRules? other) => other is null || other.IsEmpty ? this : IsEmpty ? other : new AccessRules
    {
        GuestToHost = GuestToHost.AddRange(other.GuestToHost),
        HostToGuest = HostToGuest.AddRange(other.HostToGuest),
        Siblings = Siblings.Union(other.Siblings),
    };

    /// <summary>Whether this guest may talk with the sibling guest <paramref name="cid"/> as far as its own rules go
    /// (the sibling's rules must allow it too).</summary>
    /// <param name="cid">The sibling's guest CID.</param>
    /// <returns><see langword="true"/> when allowed.</returns>
    public bool AllowsSibling(ulong cid) => Siblings.IsEmpty || Siblings.Contains(cid);

    /// <summary>The rules the Unix backend enforces (host-side directions), or <see langword="null"/> when neither has a rule.</summary>
    /// <returns>The backend's rules.</returns>
    public VsockAccessRules? ForHostSide() =>
        GuestToHost.IsEmpty && HostToGuest.IsEmpty ? null : new VsockAccessRules(GuestToHost, HostToGuest);

    /// <summary>Whether both hold the same rules in the same order.</summary>
    /// <param name="other">The other rules.</param>
    /// <returns><see langword="true"/> when equal.</returns>
    public bool Equals(AccessRules? other) =>
        other is not null
        && GuestToHost.SequenceEqual(other.GuestToHost)
        && HostToGuest.SequenceEqual(other.HostToGuest)
        && Siblings.SetEquals(other.Siblings);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(GuestToHost.Length, HostToGuest.Length, Siblings.Count);
}
