using System.Diagnostics.CodeAnalysis;

namespace VhostUserVsock.Configuration;

/// <summary>
/// The names of <see cref="VmSetting"/>s: the dashed spelling is canonical, the underscored one
/// (rust-vmm's config-file spelling, also accepted by its <c>--vm</c>) is accepted everywhere.
/// </summary>
public static class VmSettingNames
{
    /// <summary>The canonical keys in documentation order, for messages: <c>guest-cid, socket, uds-path, tx-buffer-size, queue-size, groups</c>.</summary>
    public static string KnownKeys { get; } = string.Join(", ", Enum.GetValues<VmSetting>().Select(Canonical));

    /// <summary>The canonical (dashed) key of a setting.</summary>
    /// <param name="setting">The setting.</param>
    /// <returns>Its key, e.g. <c>uds-path</c>.</returns>
    public static string Canonical(VmSetting setting) => setting switch
    {
        VmSetting.GuestCid => "guest-cid",
        VmSetting.Socket => "socket",
        VmSetting.UdsPath => "uds-path",
        VmSetting.TxBufferSize => "tx-buffer-size",
        VmSetting.QueueSize => "queue-size",
        VmSetting.Groups => "groups",
        _ => throw new ArgumentOutOfRangeException(nameof(setting), setting, null),
    };

    /// <summary>Looks up a key, with dashes or underscores; keys are case-sensitive as in rust-vmm.</summary>
    /// <param name="key">The key as written.</param>
    /// <param name="setting">The setting when found.</param>
    /// <returns><see langword="true"/> when <paramref name="key"/> names a setting.</returns>
    public static bool TryParse(string key, out VmSetting setting)
    {
        switch (key.Replace('_', '-'))
        {
            case "guest-cid": setting = VmSetting.GuestCid; return true;
            case "socket": setting = VmSetting.Socket; return true;
            case "uds-path": setting = VmSetting.UdsPath; return true;
            case "tx-buffer-size": setting = VmSetting.TxBufferSize; return true;
            case "queue-size": setting = VmSetting.QueueSize; return true;
            case "groups": setting = VmSetting.Groups; return true;
            default: setting = default; return false;
        }
    }

    /// <summary>
    /// Whether a key belongs to a rust-vmm feature this daemon does not have (the vsock forwarding
    /// backend: <c>forward-cid</c>, <c>forward-listen</c>), and if so the one-line explanation.
    /// </summary>
    /// <param name="key">The key as written.</param>
    /// <param name="explanation">Why it is refused.</param>
    /// <returns><see langword="true"/> when the key is a known but unsupported rust-vmm key.</returns>
    public static bool IsUnsupported(string key, [NotNullWhen(true)] out string? explanation)
    {
        if (key.Replace('_', '-') is "forward-cid" or "forward-listen")
        {
            explanation = $"'{key}' selects rust-vmm's vsock forwarding backend, which vhost-user-vsock does not have; use uds-path";
            return true;
        }

        explanation = null;
        return false;
    }
}
