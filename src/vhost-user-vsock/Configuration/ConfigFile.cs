using System.Collections.Immutable;
using System.Text;

namespace VhostUserVsock.Configuration;

/// <summary>
/// Reads the YAML configuration file of rust-vmm's vhost-device-vsock (<c>--config FILE</c>), plus the daemon's
/// own per-VM <c>allow</c> list (access rules, the syntax of <c>--allow</c>):
/// <code>
/// vms:
///     - guest_cid: 3
///       socket: /tmp/vhost3.socket
///       uds_path: /tmp/vm3.vsock
///       tx_buffer_size: 65536
///       queue_size: 1024
///       groups: group1+groupA
///       allow:
///         - host-to-guest:22,uid=1000
///         - sibling:4
/// </code>
/// YamlDotNet parses the text (<see cref="ConfigYamlReader"/>: any YAML syntax, one document); this class checks
/// the shape and the values, with a one-line message naming the line: one top-level key <c>vms</c>, a list of
/// VMs, each a mapping of single values (and <c>allow</c>, one rule or a list of rules). Keys take '_' or '-';
/// unlike rust-vmm (which ignores unknown keys and keeps the last of duplicates) an unknown or repeated key is
/// an error. Must never touch the file system beyond reading the file (paths are checked by
/// <see cref="ConfigValidator"/>).
/// </summary>
public static class ConfigFile
{
    /// <summary>The per-VM key for access rules (config file only: <c>--vm</c> values cannot hold its commas).</summary>
    public const string AllowKey = "allow";

    private const string TopLevel = "(the file holds one key, vms: a list of VMs)";

    /// <summary>Reads and parses a configuration file.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The VMs it lists, in order.</returns>
    /// <exception cref="ConfigurationException">The file cannot be read or is not a valid configuration.</exception>
    public static ImmutableArray<VmConfig> Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string text;
        try
        {
            text = File.ReadAllText(path, Encoding.UTF8);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            string why = ex switch
            {
                FileNotFoundException or DirectoryNotFoundException => "no such file",
                UnauthorizedAccessException when Directory.Exists(path) => "it is a directory",
                UnauthorizedAccessException => "permission denied",
                _ => ex.Message,
            };
            throw new ConfigurationException($"--config: cannot read '{ConfigText.Printable(path)}': {why}", ex);
        }

        return Parse(text, path);
    }

    /// <summary>Parses the text of a configuration file.</summary>
    /// <param name="text">The YAML text.</param>
    /// <param name="name">The file's name, for messages.</param>
    /// <returns>The VMs it lists, in order.</returns>
    /// <exception cref="ConfigurationException">The text is not a valid configuration.</exception>
    public static ImmutableArray<VmConfig> Parse(string text, string name)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(name);
        string where = $"config file '{ConfigText.Printable(name)}'";
        ConfigNode? root = ConfigYamlReader.Read(text, where);
        switch (root)
        {
            case null:
                throw new ConfigurationException($"{where}: no 'vms:' list of VMs");
            case ConfigScalar scalar:
                throw new ConfigurationException($"{where} line {scalar.Line}: expected 'key: value', found '{ConfigText.Printable(scalar.Value)}'");
            case ConfigSequence sequence:
                throw new ConfigurationException($"{where} line {sequence.Line}: the file is a list; it holds one key, vms: a list of VMs");
        }

        ImmutableArray<VmConfig>? vms = null;
        foreach ((ConfigScalar key, ConfigNode value) in ((ConfigMapping)root).Entries)
        {
            if (key.Value != "vms")
            {
                throw new ConfigurationException($"{where} line {key.Line}: unknown top-level key '{ConfigText.Printable(key.Value)}' {TopLevel}");
            }

            if (vms is not null)
            {
                throw new ConfigurationException($"{where} line {key.Line}: vms is given twice");
            }

            vms = ReadVms(key, value, where);
        }

        return vms ?? throw new ConfigurationException($"{where}: no 'vms:' list of VMs");
    }

    private static ImmutableArray<VmConfig> ReadVms(ConfigScalar key, ConfigNode value, string where)
    {
        if (value is ConfigScalar { IsNull: true } || value is ConfigSequence { Items.IsEmpty: true })
        {
            throw new ConfigurationException($"{where} line {key.Line}: no VMs listed under vms:");
        }

        if (value is not ConfigSequence list)
        {
            throw new ConfigurationException($"{where} line {key.Line}: vms must be a list of VMs, one '- ' entry per VM; found {value.Kind}");
        }

        ImmutableArray<VmConfig>.Builder vms = ImmutableArray.CreateBuilder<VmConfig>(list.Items.Length);
        foreach (ConfigNode item in list.Items)
        {
            vms.Add(ReadVm(item, vms.Count + 1, where));
        }

        return vms.MoveToImmutable();
    }

    private static VmConfig ReadVm(ConfigNode item, int number, string where)
    {
        string vmOrigin = $"{where} line {item.Line} (VM {number})";
        ConfigMapping entries = item switch
        {
            ConfigMapping mapping when !mapping.Entries.IsEmpty => mapping,
            ConfigMapping or ConfigScalar { IsNull: true } => throw new ConfigurationException($"{vmOrigin}: empty VM entry"),
            ConfigScalar scalar => throw new ConfigurationException(
                $"{where} line {scalar.Line}: expected 'key: value', found '{ConfigText.Printable(scalar.Value)}'"),
            _ => throw new ConfigurationException($"{vmOrigin}: a VM is a mapping of 'key: value' settings, found {item.Kind}"),
        };

        var builder = new VmConfigBuilder(VmSettingStyle.ConfigFile);
        AccessRules? access = null;
        foreach ((ConfigScalar key, ConfigNode value) in entries.Entries)
        {
            string origin = $"{where} line {key.Line}";
            if (key.Value == AllowKey)
            {
                if (access is not null)
                {
                    throw new ConfigurationException($"{origin}: {AllowKey} is given twice");
                }

                access = ReadAllow(value, where);
                continue;
            }

            switch (value)
            {
                case ConfigScalar { IsNull: true }:
                    throw new ConfigurationException($"{origin}: {ConfigText.Printable(key.Value)} has no value");
                case ConfigScalar scalar:
                    builder.Set(key.Value, scalar.Value, origin);
                    break;
                default:
                    // An unknown key is reported as such before the shape of its value.
                    _ = builder.Resolve(key.Value, origin);
                    throw new ConfigurationException($"{origin}: {ConfigText.Printable(key.Value)} takes one value, found {value.Kind}");
            }
        }

        VmConfig vm = builder.Build(vmOrigin);
        return access is null ? vm : vm with { Access = access };
    }

    private static AccessRules ReadAllow(ConfigNode value, string where)
    {
        ImmutableArray<ConfigNode> rules = value switch
        {
            ConfigSequence sequence => sequence.Items,
            ConfigScalar { IsNull: false } => [value],
            _ => [],
        };

        if (rules.IsEmpty)
        {
            throw new ConfigurationException(
                $"{where} line {value.Line}: {AllowKey} needs one rule or a list of rules (guest-to-host:PORTS, host-to-guest:PORTS[,uid=N][,gid=N], sibling:CID[,CID...])");
        }

        AccessRules access = AccessRules.None;
        foreach (ConfigNode rule in rules)
        {
            string origin = $"{where} line {rule.Line}: {AllowKey}";
            if (rule is not ConfigScalar { IsNull: false } text)
            {
                throw new ConfigurationException($"{origin}: each rule is one value like host-to-guest:22, found {(rule is ConfigScalar ? "nothing" : rule.Kind)}");
            }

            access = access.Union(AccessRuleParser.ParseRule(text.Value, origin));
        }

        return access;
    }
}
