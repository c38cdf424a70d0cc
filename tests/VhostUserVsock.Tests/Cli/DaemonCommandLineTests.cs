using Microsoft.Extensions.Logging;
using VhostUserVsock.Cli;
using VhostUserVsock.Configuration;

namespace VhostUserVsock.Tests.Cli;

public sealed class DaemonCommandLineTests
{
    private static readonly DefaultPaths Defaults = DefaultPaths.FromRuntimeDirectory("/run/user/1000");

    private static DaemonConfig Parse(params string[] args) => new DaemonCommandLine(Defaults).ParseConfig(args);

    private static string ParseError(params string[] args)
    {
        var error = Assert.Throws<ConfigurationException>(() => Parse(args));
        Assert.DoesNotContain('\n', error.Message);
        return error.Message;
    }

    [Fact]
    public void One_vm_options_as_rust_vmm_takes_them()
    {
        DaemonConfig config = Parse(
            "--guest-cid", "4", "--socket", "/tmp/vhost4.socket", "--uds-path", "/tmp/vm4.vsock",
            "--tx-buffer-size", "32768", "--queue-size", "256", "--groups", "group1+group2");

        Assert.Equal(ConfigSource.SingleVmOptions, config.Source);
        Assert.Equal(LogLevel.Information, config.LogLevel);
        VmConfig vm = Assert.Single(config.Vms);
        Assert.Equal(
            new VmConfig
            {
                GuestCid = 4,
                SocketPath = "/tmp/vhost4.socket",
                UdsPath = "/tmp/vm4.vsock",
                TxBufferSize = 32768,
                QueueSize = 256,
                Groups = ["group1", "group2"],
            },
            vm);
    }

    [Fact]
    public void One_vm_options_with_equals_syntax_and_defaults()
    {
        DaemonConfig config = Parse("--socket=/tmp/vhost3.socket", "--uds-path=/tmp/vm3.vsock");

        VmConfig vm = Assert.Single(config.Vms);
        Assert.Equal(new VmConfig { SocketPath = "/tmp/vhost3.socket", UdsPath = "/tmp/vm3.vsock" }, vm);
        Assert.Equal(3ul, vm.GuestCid);
        Assert.Equal(262144u, vm.TxBufferSize);
        Assert.Equal(1024u, vm.QueueSize);
        Assert.Equal(new[] { "default" }, vm.Groups);
    }

    [Fact]
    public void Several_vm_options_as_in_rust_vmm_readme()
    {
        DaemonConfig config = Parse(
            "--vm", "guest-cid=3,socket=/tmp/vhost3.socket,uds-path=/tmp/vm3.vsock,groups=group1+groupA",
            "--vm", "guest-cid=4,socket=/tmp/vhost4.socket,uds-path=/tmp/vm4.vsock,tx-buffer-size=32768,queue-size=256",
            "--vm=socket=/tmp/vhost5.socket,uds_path=/tmp/vm5.vsock,guest_cid=5");

        Assert.Equal(ConfigSource.VmOptions, config.Source);
        Assert.Equal(3, config.Vms.Length);
        Assert.Equal(new VmConfig { GuestCid = 3, SocketPath = "/tmp/vhost3.socket", UdsPath = "/tmp/vm3.vsock", Groups = ["group1", "groupA"] }, config.Vms[0]);
        Assert.Equal(new VmConfig { GuestCid = 4, SocketPath = "/tmp/vhost4.socket", UdsPath = "/tmp/vm4.vsock", TxBufferSize = 32768, QueueSize = 256 }, config.Vms[1]);
        Assert.Equal(new VmConfig { GuestCid = 5, SocketPath = "/tmp/vhost5.socket", UdsPath = "/tmp/vm5.vsock" }, config.Vms[2]);
        Assert.Equal(new[] { config.Vms[2] }, config.SiblingsOf(config.Vms[1]));
        Assert.Empty(config.SiblingsOf(config.Vms[0]));
    }

    [Fact]
    public void No_vm_arguments_give_the_default_vm_under_the_runtime_directory()
    {
        DaemonConfig config = Parse("--log-level", "debug");

        Assert.Equal(ConfigSource.Defaults, config.Source);
        Assert.Equal(LogLevel.Debug, config.LogLevel);
        VmConfig vm = Assert.Single(config.Vms);
        Assert.Equal(
            new VmConfig
            {
                GuestCid = 3,
                SocketPath = "/run/user/1000/vhost-user-vsock/vhost-user-vsock-3.sock",
                UdsPath = "/run/user/1000/vhost-user-vsock/vsock-3.sock",
            },
            vm);
        Assert.Equal(Parse().Vms, config.Vms);
    }

    [Theory]
    [InlineData("trace", LogLevel.Trace)]
    [InlineData("debug", LogLevel.Debug)]
    [InlineData("information", LogLevel.Information)]
    [InlineData("Info", LogLevel.Information)]
    [InlineData("warning", LogLevel.Warning)]
    [InlineData("warn", LogLevel.Warning)]
    [InlineData("error", LogLevel.Error)]
    [InlineData("CRITICAL", LogLevel.Critical)]
    [InlineData("none", LogLevel.None)]
    public void Log_levels(string name, LogLevel level) =>
        Assert.Equal(level, Parse("--vm", "socket=/a,uds-path=/b", "--log-level", name).LogLevel);

    [Theory]
    [InlineData("--vm cannot be combined with --socket; describe one VM with --guest-cid/--socket/--uds-path/..., or each VM with its own --vm",
        "--vm", "socket=/a,uds-path=/b", "--socket", "/c")]
    [InlineData("--vm cannot be combined with --guest-cid; describe one VM with --guest-cid/--socket/--uds-path/..., or each VM with its own --vm",
        "--guest-cid", "5", "--vm", "socket=/a,uds-path=/b")]
    [InlineData("--vm cannot be combined with --groups; describe one VM with --guest-cid/--socket/--uds-path/..., or each VM with its own --vm",
        "--vm", "socket=/a,uds-path=/b", "--groups", "a")]
    [InlineData("--config cannot be combined with --vm; give the VMs one way",
        "--config", "/x.yaml", "--vm", "socket=/a,uds-path=/b")]
    [InlineData("--config cannot be combined with --uds-path; describe one VM with --guest-cid/--socket/--uds-path/..., or each VM with its own --vm",
        "--config", "/x.yaml", "--uds-path", "/b")]
    public void Forms_do_not_mix(string expected, params string[] args) => Assert.Equal(expected, ParseError(args));

    [Theory]
    [InlineData("missing --uds-path (one VM on the command line needs --socket and --uds-path)", "--socket", "/a")]
    [InlineData("missing --socket (one VM on the command line needs --socket and --uds-path)", "--guest-cid", "4")]
    [InlineData("missing --socket (one VM on the command line needs --socket and --uds-path)", "--queue-size", "256")]
    [InlineData("--guest-cid 'x' is not a number", "--guest-cid", "x", "--socket", "/a", "--uds-path", "/b")]
    [InlineData("--guest-cid: guest CID 0 is reserved for the hypervisor; a guest CID is 3 to 4294967294", "--guest-cid", "0", "--socket", "/a", "--uds-path", "/b")]
    [InlineData("--guest-cid: guest CID 4294967295 is reserved (VMADDR_CID_ANY); a guest CID is 3 to 4294967294", "--guest-cid", "4294967295", "--socket", "/a", "--uds-path", "/b")]
    [InlineData("--queue-size: queue size 0 is not a power of two from 1 to 32768", "--queue-size", "0", "--socket", "/a", "--uds-path", "/b")]
    [InlineData("--queue-size: queue size 65536 is not a power of two from 1 to 32768", "--queue-size", "65536", "--socket", "/a", "--uds-path", "/b")]
    [InlineData("--tx-buffer-size: tx buffer size 16777217 is out of range; it is 4096 to 16777216 bytes (4 KiB to 16 MiB)", "--tx-buffer-size", "16777217", "--socket", "/a", "--uds-path", "/b")]
    [InlineData("--groups '': empty group name (groups are names joined by '+', e.g. groups=a+b)", "--groups", "", "--socket", "/a", "--uds-path", "/b")]
    [InlineData("--vm #2: missing socket=PATH (each --vm needs socket and uds-path)", "--vm", "socket=/a,uds-path=/b", "--vm", "uds-path=/c")]
    [InlineData("--vm: unknown key 'bogus' (known keys: guest-cid, socket, uds-path, tx-buffer-size, queue-size, groups; '_' may replace '-')", "--vm", "socket=/a,uds-path=/b,bogus=1")]
    [InlineData("--forward-cid: 'forward-cid' selects rust-vmm's vsock forwarding backend, which vhost-user-vsock does not have; use uds-path", "--forward-cid", "1", "--socket", "/a")]
    [InlineData("--log-level 'loud' is not a level; use one of trace|debug|information|warning|error|critical|none", "--log-level", "loud")]
    [InlineData("Unrecognized command or argument '--bogus'. (see --help)", "--bogus")]
    [InlineData("Unrecognized command or argument 'extra'. (see --help)", "--vm", "socket=/a,uds-path=/b", "extra")]
    [InlineData("Required argument missing for option: '--socket'. (see --help)", "--uds-path", "/b", "--socket")]
    [InlineData("Option '--socket' expects a single argument but 2 were provided. (see --help)", "--socket", "/a", "--socket", "/b", "--uds-path", "/c")]
    public void Bad_command_lines_give_one_line_messages(string expected, params string[] args) =>
        Assert.Equal(expected, ParseError(args));

    [Fact]
    public void Values_starting_with_at_are_not_response_files()
    {
        DaemonConfig config = Parse("--socket", "@vhost.sock", "--uds-path", "/tmp/vm.sock");

        Assert.Equal(Path.GetFullPath("@vhost.sock"), Assert.Single(config.Vms).SocketPath);
    }

    [Fact]
    public void Config_file_option_reads_the_file()
    {
        using var dir = new TempDirectory();
        string file = dir.File("vms.yaml");
        File.WriteAllText(file, "vms:\n  - guest_cid: 7\n    socket: /tmp/s7\n    uds_path: /tmp/u7\n");

        DaemonConfig config = Parse("--config", file, "--log-level", "warning");

        Assert.Equal(ConfigSource.ConfigFile, config.Source);
        Assert.Equal(LogLevel.Warning, config.LogLevel);
        Assert.Equal(new VmConfig { GuestCid = 7, SocketPath = "/tmp/s7", UdsPath = "/tmp/u7" }, Assert.Single(config.Vms));
    }

    [Fact]
    public void Help_lists_every_visible_option_and_the_vm_syntax()
    {
        var output = new StringWriter();
        var commandLine = new DaemonCommandLine(Defaults);
        int exitCode = commandLine.Parse(["--help"]).Invoke(new System.CommandLine.InvocationConfiguration { Output = output });

        string help = output.ToString();
        Assert.Equal(0, exitCode);
        foreach (string option in new[] { "--guest-cid", "--socket", "--uds-path", "--tx-buffer-size", "--queue-size", "--groups", "--vm", "--config", "--log-level", "--help", "--version" })
        {
            Assert.Contains(option, help, StringComparison.Ordinal);
        }

        Assert.Contains("guest-cid=N,socket=PATH,uds-path=PATH[,tx-buffer-size=BYTES][,queue-size=N][,groups=A+B]", help, StringComparison.Ordinal);
        Assert.Contains("/run/user/1000/vhost-user-vsock/vhost-user-vsock-3.sock", help, StringComparison.Ordinal);
        Assert.DoesNotContain("--forward-cid <", help, StringComparison.Ordinal);
    }
}
