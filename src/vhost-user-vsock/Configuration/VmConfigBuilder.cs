using System.Collections.Immutable;

namespace VhostUserVsock.Configuration;

/// <summary>
/// Collects one VM's settings from text (a <c>--vm</c> argument, one-VM options or a config-file
/// entry), parsing each value as it arrives, and builds the <see cref="VmConfig"/> with rust-vmm's
/// defaults for what was left out. Every problem is a <see cref="ConfigurationException"/> whose
/// one-line message says where it is.
/// </summary>
public sealed class VmConfigBuilder
{
    private readonly VmSettingStyle _style;
    private readonly HashSet<VmSetting> _given = [];
    private ulong _guestCid = VmDefaults.GuestCid;
    private string? _socket;
    private string? _udsPath;
    private uint _txBufferSize = VmDefaults.TxBufferSize;
    private uint _queueSize = VmDefaults.QueueSize;
    private ImmutableSortedSet<string> _groups = VmConfig.DefaultGroups;

    /// <summary>Creates a builder.</summary>
    /// <param name="style">How the settings are written, for messages.</param>
    public VmConfigBuilder(VmSettingStyle style) => _style = style;

    /// <summary>Whether any setting has been given.</summary>
    public bool IsEmpty => _given.Count == 0;

    /// <summary>Sets one setting from its text.</summary>
    /// <param name="key">The key as written: <c>guest-cid</c> or <c>guest_cid</c>, …; for <see cref="VmSettingStyle.Options"/> the option name without dashes works too.</param>
    /// <param name="value">The value as written.</param>
    /// <param name="origin">Where it was written, the start of any error message (e.g. <c>--vm #2</c>); empty for none.</param>
    /// <returns>This builder.</returns>
    /// <exception cref="ConfigurationException">The key is unknown or given twice, or the value is malformed or out of range.</exception>
    public VmConfigBuilder Set(string key, string value, string origin)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        VmSetting setting = Resolve(key, origin);
        string label = Label(setting, key);
        if (!_given.Add(setting))
        {
            throw new ConfigurationException($"{Prefix(origin)}{label} is given twice");
        }

        string text = value.Trim();
        switch (setting)
        {
            case VmSetting.GuestCid:
                _guestCid = ParseNumber(text, label, origin, VmLimits.DescribeGuestCidProblem);
                break;
            case VmSetting.Socket:
                _socket = ParsePath(text, label, origin);
                break;
            case VmSetting.UdsPath:
                _udsPath = ParsePath(text, label, origin);
                break;
            case VmSetting.TxBufferSize:
                _txBufferSize = checked((uint)ParseNumber(text, label, origin, VmLimits.DescribeTxBufferSizeProblem));
                break;
            case VmSetting.QueueSize:
                _queueSize = checked((uint)ParseNumber(text, label, origin, VmLimits.DescribeQueueSizeProblem));
                break;
            case VmSetting.Groups:
                _groups = ParseGroups(text, label, origin);
                break;
        }

        return this;
    }

    /// <summary>Builds the VM from the settings given so far, defaults for the rest.</summary>
    /// <param name="origin">Where the VM was described, the start of any error message; empty for none.</param>
    /// <returns>The VM's configuration (not yet validated against other VMs or the file system).</returns>
    /// <exception cref="ConfigurationException"><c>socket</c> or <c>uds-path</c> was not given.</exception>
    public VmConfig Build(string origin)
    {
        if (_socket is null || _udsPath is null)
        {
            VmSetting missing = _socket is null ? VmSetting.Socket : VmSetting.UdsPath;
            throw new ConfigurationException(_style switch
            {
                VmSettingStyle.Options =>
                    $"{Prefix(origin)}missing --{VmSettingNames.Canonical(missing)} (one VM on the command line needs --socket and --uds-path)",
                VmSettingStyle.ConfigFile =>
                    $"{Prefix(origin)}missing {VmSettingNames.Canonical(missing).Replace('-', '_')} (each VM needs socket and uds_path)",
                _ => $"{Prefix(origin)}missing {VmSettingNames.Canonical(missing)}=PATH (each --vm needs socket and uds-path)",
            });
        }

        return new VmConfig
        {
            GuestCid = _guestCid,
            SocketPath = _socket,
            UdsPath = _udsPath,
            TxBufferSize = _txBufferSize,
            QueueSize = _queueSize,
            Groups = _groups,
        };
    }

    /// <summary>Looks up a key as <see cref="Set"/> does, without setting anything.</summary>
    /// <param name="key">The key as written.</param>
    /// <param name="origin">Where it was written, the start of any error message; empty for none.</param>
    /// <returns>The setting.</returns>
    /// <exception cref="ConfigurationException">The key is unknown or belongs to an unsupported rust-vmm feature.</exception>
    public VmSetting Resolve(string key, string origin)
    {
        ArgumentNullException.ThrowIfNull(key);
        string bare = key.StartsWith("--", StringComparison.Ordinal) ? key[2..] : key;
        if (VmSettingNames.IsUnsupported(bare, out string? unsupported))
        {
            throw new ConfigurationException($"{Prefix(origin)}{unsupported}");
        }

        if (!VmSettingNames.TryParse(bare, out VmSetting setting))
        {
            string known = _style == VmSettingStyle.ConfigFile ? $"{VmSettingNames.KnownKeys}, {ConfigFile.AllowKey}" : VmSettingNames.KnownKeys;
            throw new ConfigurationException(
                $"{Prefix(origin)}unknown key '{ConfigText.Printable(key)}' (known keys: {known}; '_' may replace '-')");
        }

        return setting;
    }

    private static string Prefix(string origin) => origin.Length == 0 ? string.Empty : origin + ": ";

    private string Label(VmSetting setting, string key) => _style == VmSettingStyle.Options
        ? "--" + VmSettingNames.Canonical(setting)
        : key;

    private static ulong ParseNumber(string text, string label, string origin, Func<ulong, string?> describeProblem)
    {
        if (!ConfigText.TryParseUnsigned(text, out ulong number, out bool tooLarge))
        {
            throw new ConfigurationException(tooLarge
                ? $"{Prefix(origin)}{label} '{ConfigText.Printable(text)}' is too large"
                : $"{Prefix(origin)}{label} '{ConfigText.Printable(text)}' is not a number");
        }

        if (describeProblem(number) is { } problem)
        {
            throw new ConfigurationException($"{Prefix(origin)}{label}: {problem}");
        }

        return number;
    }

    private static string ParsePath(string text, string label, string origin)
    {
        if (text.Length == 0)
        {
            throw new ConfigurationException($"{Prefix(origin)}{label} is empty");
        }

        if (text.Contains('\0', StringComparison.Ordinal))
        {
            throw new ConfigurationException($"{Prefix(origin)}{label} '{ConfigText.Printable(text)}' contains a NUL character");
        }

        return Path.GetFullPath(text);
    }

    private static ImmutableSortedSet<string> ParseGroups(string text, string label, string origin)
    {
        ImmutableSortedSet<string>.Builder groups = ImmutableSortedSet.CreateBuilder<string>(StringComparer.Ordinal);
        foreach (string name in text.Split('+'))
        {
            string trimmed = name.Trim();
            if (VmLimits.DescribeGroupNameProblem(trimmed) is { } problem)
            {
                throw new ConfigurationException($"{Prefix(origin)}{label} '{ConfigText.Printable(text)}': {problem}");
            }

            groups.Add(trimmed);
        }

        return groups.ToImmutable();
    }
}
