using System.Collections.Immutable;
using System.Globalization;

namespace VhostUserVsock.Configuration;

/// <summary>
/// One VM served by the daemon: its guest CID, the vhost-user socket its VMM connects to, the
/// Unix socket host programs use to reach it, and its tuning and sibling groups. Equal when all
/// settings are equal (groups compared as sets). Parsing does not validate; see
/// <see cref="ConfigValidator"/>.
/// </summary>
public sealed record VmConfig
{
    private readonly ImmutableSortedSet<string> _groups = DefaultGroups;

    /// <summary>The group set of a VM that names none: just <see cref="VmDefaults.GroupName"/>.</summary>
    public static ImmutableSortedSet<string> DefaultGroups { get; } =
        ImmutableSortedSet.Create(StringComparer.Ordinal, VmDefaults.GroupName);

    /// <summary>The guest's context id, offered in the device's config space (valid: 3 to 0xfffffffe).</summary>
    public ulong GuestCid { get; init; } = VmDefaults.GuestCid;

    /// <summary>The vhost-user Unix socket the daemon listens on for the VMM (QEMU's <c>-chardev socket,path=</c>).</summary>
    public required string SocketPath { get; init; }

    /// <summary>
    /// The Unix socket host programs connect to and send <c>CONNECT &lt;port&gt;\n</c> to reach a guest
    /// port; a guest connecting to host port P reaches <c>&lt;UdsPath&gt;_P</c> (see <see cref="HostPortSocketPath"/>).
    /// </summary>
    public required string UdsPath { get; init; }

    /// <summary>Per-connection buffer, in bytes, for data from the guest on its way to a host socket.</summary>
    public uint TxBufferSize { get; init; } = VmDefaults.TxBufferSize;

    /// <summary>The largest vring size the device accepts from the VMM (a power of two up to 32768).</summary>
    public uint QueueSize { get; init; } = VmDefaults.QueueSize;

    /// <summary>
    /// The sibling groups this VM belongs to, compared ordinally: VMs with a group in common reach
    /// each other by CID. Never empty after parsing; defaults to <see cref="DefaultGroups"/>.
    /// </summary>
    public ImmutableSortedSet<string> Groups
    {
        get => _groups;
        init => _groups = value.KeyComparer == StringComparer.Ordinal
            ? value
            : ImmutableSortedSet.CreateRange(StringComparer.Ordinal, value);
    }

    /// <summary>
    /// This VM's own access rules (a VM's <c>allow</c> list in the config file); <see cref="AccessRules.None"/> when it
    /// has none. The daemon's <c>--allow</c> rules add to them: see <see cref="DaemonConfig.AccessOf"/>.
    /// </summary>
    public AccessRules Access { get; init; } = AccessRules.None;

    /// <summary>Whether this VM and <paramref name="other"/> have a group in common (may talk to each other).</summary>
    /// <param name="other">Another VM.</param>
    /// <returns><see langword="true"/> when they share at least one group.</returns>
    public bool SharesGroupWith(VmConfig other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return _groups.Overlaps(other._groups);
    }

    /// <summary>The Unix socket a host program listens on to accept guest connections to host port <paramref name="port"/>.</summary>
    /// <param name="port">The vsock port the guest connects to on the host (CID 2).</param>
    /// <returns><c>&lt;UdsPath&gt;_&lt;port&gt;</c>.</returns>
    public string HostPortSocketPath(uint port) => string.Create(CultureInfo.InvariantCulture, $"{UdsPath}_{port}");

    /// <summary>This VM as a <c>--vm</c> argument: <c>guest-cid=N,socket=…,uds-path=…,tx-buffer-size=…,queue-size=…,groups=a+b</c>
    /// (without <see cref="Access"/>, which only the config file can hold).</summary>
    /// <returns>The <c>--vm</c> value that describes this VM.</returns>
    public string ToVmArgument() => string.Create(
        CultureInfo.InvariantCulture,
        $"guest-cid={GuestCid},socket={SocketPath},uds-path={UdsPath},tx-buffer-size={TxBufferSize},queue-size={QueueSize},groups={string.Join('+', _groups)}");

    /// <inheritdoc/>
    public override string ToString() => ToVmArgument();

    /// <summary>Whether all settings are equal, groups compared as sets.</summary>
    /// <param name="other">The other VM configuration.</param>
    /// <returns><see langword="true"/> when equal.</returns>
    public bool Equals(VmConfig? other) =>
        other is not null
        && GuestCid == other.GuestCid
        && string.Equals(SocketPath, other.SocketPath, StringComparison.Ordinal)
        && string.Equals(UdsPath, other.UdsPath, StringComparison.Ordinal)
        && TxBufferSize == other.TxBufferSize
        && QueueSize == other.QueueSize
        && _groups.SetEquals(other._groups)
        && Access.Equals(other.Access);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(GuestCid);
        hash.Add(SocketPath, StringComparer.Ordinal);
        hash.Add(UdsPath, StringComparer.Ordinal);
        hash.Add(TxBufferSize);
        hash.Add(QueueSize);
        foreach (string group in _groups)
        {
            hash.Add(group, StringComparer.Ordinal);
        }

        return hash.ToHashCode();
    }
}
