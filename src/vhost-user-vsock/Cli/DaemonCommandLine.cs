using System.Collections.Immutable;
using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;
using System.Globalization;
using Microsoft.Extensions.Logging;
using VhostUserVsock.Configuration;
using VhostUserVsock.Control;

namespace VhostUserVsock.Cli;

/// <summary>
/// The daemon's command line (System.CommandLine) and its translation into a
/// <see cref="DaemonConfig"/>. Accepts rust-vmm vhost-device-vsock's forms unchanged: the one-VM
/// options, one or more <c>--vm key=value,…</c>, or <c>--config FILE</c>; these forms do not mix.
/// With none of them it serves one VM with the defaults of <see cref="DefaultPaths"/>.
/// </summary>
public sealed class DaemonCommandLine
{
    /// <summary>The root command's description, the first part of <c>--help</c>.</summary>
    public const string Description =
        "A vhost-user virtio-vsock device backend: QEMU's vhost-user-vsock-pci (or another vhost-user\n"
        + "frontend) connects to it, and guest AF_VSOCK sockets are bridged to Unix sockets on the host.\n"
        + "A drop-in replacement for rust-vmm's vhost-device-vsock: the same options, --vm syntax and\n"
        + "config file. Several VMs can be served by one process.";

    /// <summary>Creates the command line.</summary>
    /// <param name="defaults">Where the sockets go when no VM is given.</param>
    public DaemonCommandLine(DefaultPaths defaults)
    {
        ArgumentNullException.ThrowIfNull(defaults);
        Defaults = defaults;
        Command = new RootCommand(Description);
        foreach (Option option in Options.All)
        {
            Command.Options.Add(option);
        }

        Command.Subcommands.Add(Connections.Command);

        // With a subcommand, a root command without an action would make one required: the caller replaces this.
        Command.SetAction(_ => ExitCodes.Success);
        Command.Directives.Clear();
        foreach (Option option in Command.Options)
        {
            switch (option)
            {
                case VersionOption version:
                    version.Aliases.Add("-V");
                    break;
                case HelpOption help when help.Action is HelpAction helpAction:
                    help.Action = new HelpWithExamplesAction(helpAction, defaults);
                    break;
            }
        }
    }

    /// <summary>How arguments are tokenized: no response files, so a value may start with '@'.</summary>
    public static ParserConfiguration ParserConfiguration { get; } = new() { ResponseFileTokenReplacer = null };

    /// <summary>The options.</summary>
    public DaemonOptions Options { get; } = new();

    /// <summary>The <c>connections</c> subcommand (a client of a running daemon's control socket).</summary>
    public ConnectionsCommand Connections { get; } = new();

    /// <summary>The root command; its action is set by whoever runs it (see <see cref="DaemonApp"/>).</summary>
    public RootCommand Command { get; }

    /// <summary>Where the sockets go when no VM is given.</summary>
    public DefaultPaths Defaults { get; }

    /// <summary>Tokenizes and parses the arguments.</summary>
    /// <param name="args">The arguments, without the program name.</param>
    /// <returns>The parse result; check its errors before use.</returns>
    public ParseResult Parse(IReadOnlyList<string> args) => Command.Parse(args, ParserConfiguration);

    /// <summary>Parses the arguments into the daemon's configuration (not yet validated; see <see cref="ConfigValidator"/>).</summary>
    /// <param name="args">The arguments, without the program name.</param>
    /// <returns>The configuration.</returns>
    /// <exception cref="ConfigurationException">The arguments are unusable.</exception>
    public DaemonConfig ParseConfig(IReadOnlyList<string> args) => ToConfig(Parse(args));

    /// <summary>Translates a parse result into the daemon's configuration (not yet validated).</summary>
    /// <param name="result">A parse result of <see cref="Command"/>.</param>
    /// <returns>The configuration.</returns>
    /// <exception cref="ConfigurationException">The command line has errors or is unusable.</exception>
    public DaemonConfig ToConfig(ParseResult result)
    {
        DaemonConfig config = VmsOf(result);
        OperationsConfig operations = OperationsOf(result, config.Vms.Length);
        return config with { Operations = operations };
    }

    /// <summary>The <c>--metrics-listen</c> address, if given.</summary>
    /// <param name="result">A parse result of <see cref="Command"/>.</param>
    /// <returns>The address, or <see langword="null"/> when metrics are not served.</returns>
    /// <exception cref="ConfigurationException">The address is malformed, or not loopback without <c>--metrics-allow-remote</c>.</exception>
    public Metrics.MetricsAddress? MetricsOf(ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        bool allowRemote = result.GetValue(Options.MetricsAllowRemote);
        if (!IsGiven(result, Options.MetricsListen))
        {
            return allowRemote ? throw new ConfigurationException("--metrics-allow-remote needs --metrics-listen") : null;
        }

        string? problem = Metrics.MetricsAddress.TryParse(result.GetValue(Options.MetricsListen) ?? string.Empty, allowRemote, out Metrics.MetricsAddress? address);
        return problem is null ? address : throw new ConfigurationException($"--metrics-listen: {ConfigText.OneLine(problem)}");
    }

    private OperationsConfig OperationsOf(ParseResult result, int vmCount)
    {
        var operations = new OperationsConfig();
        if (IsGiven(result, Options.Capture))
        {
            string path = result.GetValue(Options.Capture) ?? string.Empty;
            if (path.Length == 0)
            {
                throw new ConfigurationException("--capture: the path is empty");
            }

            if (vmCount > 1 && !path.Contains(OperationsConfig.CidPlaceholder, StringComparison.Ordinal))
            {
                throw new ConfigurationException($"--capture: with {vmCount} VMs the path must contain {OperationsConfig.CidPlaceholder} (each VM writes its own file)");
            }

            operations = operations with { CapturePath = path };
        }

        if (IsGiven(result, Options.CaptureSnapLength))
        {
            operations = operations with { CaptureSnapLength = NumberUpTo(result, Options.CaptureSnapLength, OperationsConfig.DefaultSnapLength, "bytes") };
        }

        if (IsGiven(result, Options.PollMaxUs))
        {
            int limit = (int)Virtio.Vsock.Device.VsockDeviceOptions.MaxPollMax.TotalMicroseconds;
            operations = operations with { PollMax = TimeSpan.FromMicroseconds(NumberUpTo(result, Options.PollMaxUs, limit, "microseconds")) };
        }

        if (IsGiven(result, Options.Allow))
        {
            operations = operations with { Access = AccessRuleParser.Parse(result.GetValue(Options.Allow) ?? []) };
        }

        if (IsGiven(result, Options.Control))
        {
            string path = result.GetValue(Options.Control) ?? string.Empty;
            if (!Path.IsPathRooted(path) || System.Text.Encoding.UTF8.GetByteCount(path) >= 108)
            {
                throw new ConfigurationException($"--control: '{ConfigText.OneLine(path)}' must be an absolute path shorter than 108 bytes");
            }

            operations = operations with { ControlPath = path };
        }

        return operations;
    }

    private DaemonConfig VmsOf(ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        if (result.Errors.Count > 0)
        {
            throw new ConfigurationException($"{result.Errors[0].Message} (see --help)");
        }

        foreach (Option<string> forward in new[] { Options.ForwardCid, Options.ForwardListen })
        {
            if (IsGiven(result, forward))
            {
                _ = VmSettingNames.IsUnsupported(forward.Name[2..], out string? explanation);
                throw new ConfigurationException($"{forward.Name}: {explanation}");
            }
        }

        LogLevel logLevel = IsGiven(result, Options.LogLevel)
            ? LogLevelNames.Parse(result.GetValue(Options.LogLevel) ?? string.Empty)
            : LogLevel.Information;

        var singleGiven = Options.SingleVm.Where(entry => IsGiven(result, entry.Option)).ToList();
        bool vmGiven = IsGiven(result, Options.Vm);
        bool configGiven = IsGiven(result, Options.Config);
        if (configGiven && vmGiven)
        {
            throw new ConfigurationException("--config cannot be combined with --vm; give the VMs one way");
        }

        if ((configGiven || vmGiven) && singleGiven.Count > 0)
        {
            throw new ConfigurationException(
                $"{(configGiven ? "--config" : "--vm")} cannot be combined with {singleGiven[0].Option.Name}; "
                + "describe one VM with --guest-cid/--socket/--uds-path/..., or each VM with its own --vm");
        }

        if (configGiven)
        {
            string path = result.GetValue(Options.Config) ?? string.Empty;
            return new DaemonConfig { Vms = ConfigFile.Load(path), LogLevel = logLevel, Source = ConfigSource.ConfigFile };
        }

        if (vmGiven)
        {
            string[] arguments = result.GetValue(Options.Vm) ?? [];
            ImmutableArray<VmConfig> vms = arguments
                .Select((argument, index) => VmArgumentParser.Parse(
                    argument,
                    arguments.Length == 1 ? "--vm" : string.Create(CultureInfo.InvariantCulture, $"--vm #{index + 1}")))
                .ToImmutableArray();
            return new DaemonConfig { Vms = vms, LogLevel = logLevel, Source = ConfigSource.VmOptions };
        }

        if (singleGiven.Count > 0)
        {
            var builder = new VmConfigBuilder(VmSettingStyle.Options);
            foreach ((Option<string> option, VmSetting setting) in singleGiven)
            {
                builder.Set(VmSettingNames.Canonical(setting), result.GetValue(option) ?? string.Empty, string.Empty);
            }

            return new DaemonConfig { Vms = [builder.Build(string.Empty)], LogLevel = logLevel, Source = ConfigSource.SingleVmOptions };
        }

        return new DaemonConfig { Vms = [Defaults.DefaultVm()], LogLevel = logLevel, Source = ConfigSource.Defaults };
    }

    /// <summary>A given option's value as a plain decimal number from 0 to <paramref name="limit"/>, or a one-line error.</summary>
    private static int NumberUpTo(ParseResult result, Option<string> option, int limit, string unit)
    {
        string text = result.GetValue(option) ?? string.Empty;
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value <= limit
            ? value
            : throw new ConfigurationException($"{option.Name}: '{ConfigText.OneLine(text)}' is not a number of {unit} from 0 to {limit}");
    }

    private static bool IsGiven(ParseResult result, Option option) =>
        result.GetResult(option) is { Implicit: false };
}
