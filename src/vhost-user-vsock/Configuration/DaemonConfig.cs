using System.Collections.Immutable;
using Microsoft.Extensions.Logging;
using Virtio.Vsock.Device.Siblings;

namespace VhostUserVsock.Configuration;

/// <summary>
/// Everything the daemon runs with: the VMs it serves (in the order given) and its log level.
/// Equal when the VM lists are equal in order and the other settings are equal.
/// </summary>
public sealed record DaemonConfig
{
    /// <summary>The VMs to serve, each on its own vhost-user socket; at least one after parsing.</summary>
    public required ImmutableArray<VmConfig> Vms { get; init; }

    /// <summary>The least severe log level written (<c>--log-level</c>; default <see cref="LogLevel.Information"/>).</summary>
    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    /// <summary>Operating options: packet capture (additions to rust-vmm's command line).</summary>
    public OperationsConfig Operations { get; init; } = new();

    /// <summary>Where the VMs came from.</summary>
    public ConfigSource Source { get; init; } = ConfigSource.Programmatic;

    /// <summary>The other VMs <paramref name="vm"/> may reach by CID: those sharing a group with it whose
    /// <c>sibling</c> rules and its own allow the pair (see <see cref="AccessOf"/>).</summary>
    /// <param name="vm">One of <see cref="Vms"/>.</param>
    /// <returns>The siblings of <paramref name="vm"/>, in configuration order, without <paramref name="vm"/> itself.</returns>
    public IEnumerable<VmConfig> SiblingsOf(VmConfig vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        AccessRules own = AccessOf(vm);
        return Vms.Where(other => other.GuestCid != vm.GuestCid
            && other.SharesGroupWith(vm)
            && own.AllowsSibling(other.GuestCid)
            && AccessOf(other).AllowsSibling(vm.GuestCid));
    }

    /// <summary>
    /// The access rules that apply to <paramref name="vm"/>: the command line's <c>--allow</c> rules (every VM) plus
    /// the VM's own <c>allow</c> list, direction by direction. A direction with no rule from either allows
    /// everything; otherwise what any of those rules allows passes.
    /// </summary>
    /// <param name="vm">One of <see cref="Vms"/>.</param>
    /// <returns>The combined rules.</returns>
    public AccessRules AccessOf(VmConfig vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        return Operations.Access?.Union(vm.Access) ?? vm.Access;
    }

    /// <summary>The sibling rules of every VM, for the CID map: for each VM with <c>sibling</c> rules, the CIDs it may talk with.</summary>
    /// <returns>The rules; <see cref="SiblingAccessRules.AllowAll"/> when no VM has a sibling rule.</returns>
    public SiblingAccessRules SiblingAccess()
    {
        var peers = new Dictionary<ulong, IReadOnlyCollection<ulong>>();
        foreach (VmConfig vm in Vms)
        {
            AccessRules access = AccessOf(vm);
            if (!access.Siblings.IsEmpty)
            {
                peers[vm.GuestCid] = access.Siblings;
            }
        }

        return peers.Count == 0 ? SiblingAccessRules.AllowAll : new SiblingAccessRules(peers);
    }

    /// <summary>Whether the VM lists are equal in order and the log level, source and operating options are equal.</summary>
    /// <param name="other">The other configuration.</param>
    /// <returns><see langword="true"/> when equal.</returns>
    public bool Equals(DaemonConfig? other) =>
        other is not null
        && LogLevel == other.LogLevel
        && Source == other.Source
        && Operations == other.Operations
        && Vms.SequenceEqual(other.Vms);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(LogLevel);
        hash.Add(Source);
        hash.Add(Operations);
        foreach (VmConfig vm in Vms)
        {
            hash.Add(vm);
        }

        return hash.ToHashCode();
    }
}
