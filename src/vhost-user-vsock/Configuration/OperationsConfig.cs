using System.Globalization;

namespace VhostUserVsock.Configuration;

/// <summary>
/// The daemon's operating options that are not part of rust-vmm's command line (additions; the drop-in options
/// are unchanged): packet capture, the control socket and the device loops' polling. Owns values only; must never touch the file system.
/// </summary>
public sealed record OperationsConfig
{
    /// <summary>The placeholder in <see cref="CapturePath"/> replaced by each VM's guest CID.</summary>
    public const string CidPlaceholder = "{cid}";

    /// <summary>The default <see cref="CaptureSnapLength"/>: whole packets.</summary>
    public const int DefaultSnapLength = 64 * 1024;

    /// <summary>The pcap file each VM's packets are written to from the start (<c>--capture</c>), or <see langword="null"/>.
    /// <see cref="CidPlaceholder"/> is replaced by the VM's CID (required with several VMs).</summary>
    public string? CapturePath { get; init; }

    /// <summary>The most payload bytes kept per captured packet (<c>--capture-snaplen</c>).</summary>
    public int CaptureSnapLength { get; init; } = DefaultSnapLength;

    /// <summary>How long each VM's device loop may poll before it sleeps (<c>--poll-max-us</c>; see
    /// <see cref="Virtio.Vsock.Device.VsockDeviceOptions.PollMax"/>). Zero turns polling off.</summary>
    public TimeSpan PollMax { get; init; } = Virtio.Vsock.Device.VsockDeviceOptions.DefaultPollMax;

    /// <summary>The control socket (<c>--control</c>), or <see langword="null"/>.</summary>
    public string? ControlPath { get; init; }

    /// <summary>The access rules of every VM (<c>--allow</c>), or <see langword="null"/>: none (a VM's own
    /// <see cref="VmConfig.Access"/> add to them; see <see cref="DaemonConfig.AccessOf"/>).</summary>
    public AccessRules? Access { get; init; }

    /// <summary>The capture file of one VM, or <see langword="null"/> when capture is off.</summary>
    /// <param name="guestCid">The VM's guest CID.</param>
    /// <returns>The path.</returns>
    public string? CaptureFileOf(ulong guestCid) =>
        CapturePath?.Replace(CidPlaceholder, guestCid.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal);
}
