using Microsoft.Extensions.Logging;
using VhostUserVsock.Cli;
using VhostUserVsock.Configuration;

namespace VhostUserVsock.Tests.Cli;

public sealed class DaemonAppTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly StringWriter _output = new();
    private readonly StringWriter _error = new();

    public void Dispose() => _dir.Dispose();

    private DaemonApp App(IVmServer? server = null) => new(_ => server ?? new RecordingVmServer(1))
    {
        Output = _output,
        Error = _error,
        Defaults = DefaultPaths.FromRuntimeDirectory(_dir.Path),
        ConfigureLogging = (logging, _) => logging.ClearProviders(),
        ShutdownTimeout = TimeSpan.FromSeconds(20),
    };

    private string Vm(ulong cid, string extra = "") =>
        $"guest-cid={cid},socket={_dir.File($"vhost{cid}.sock")},uds-path={_dir.File($"vm{cid}.sock")}{extra}";

    public static TheoryData<string, string[]> BadCommandLines => new()
    {
        { "Unrecognized command or argument '--bogus'. (see --help)", ["--bogus"] },
        { "Required argument missing for option: '--vm'. (see --help)", ["--vm"] },
        { "--vm cannot be combined with --guest-cid; describe one VM with --guest-cid/--socket/--uds-path/..., or each VM with its own --vm", ["--guest-cid", "4", "--vm", "socket=/a,uds-path=/b"] },
        { "--vm: unknown key 'color' (known keys: guest-cid, socket, uds-path, tx-buffer-size, queue-size, groups; '_' may replace '-')", ["--vm", "socket=/a,uds-path=/b,color=red"] },
        { "--vm: missing uds-path=PATH (each --vm needs socket and uds-path)", ["--vm", "socket=/a"] },
        { "--vm: guest-cid '3x' is not a number", ["--vm", "guest-cid=3x,socket=/a,uds-path=/b"] },
        { "--guest-cid: guest CID 1 is reserved for local loopback; a guest CID is 3 to 4294967294", ["--guest-cid", "1", "--socket", "/a", "--uds-path", "/b"] },
        { "--vm: guest-cid: guest CID 4294967296 is above 32 bits; a guest CID is 3 to 4294967294", ["--vm", "guest-cid=4294967296,socket=/a,uds-path=/b"] },
        { "--queue-size: queue size 48 is not a power of two from 1 to 32768", ["--queue-size", "48", "--socket", "/a", "--uds-path", "/b"] },
        { "--tx-buffer-size: tx buffer size 0 is out of range; it is 4096 to 16777216 bytes (4 KiB to 16 MiB)", ["--tx-buffer-size", "0", "--socket", "/a", "--uds-path", "/b"] },
        { "--log-level 'chatty' is not a level; use one of trace|debug|information|warning|error|critical|none", ["--log-level", "chatty"] },
        { "--config: cannot read '/nonexistent/vms.yaml': no such file", ["--config", "/nonexistent/vms.yaml"] },
        { "--metrics-listen: '0.0.0.0:9464' is not a loopback address; metrics are served on loopback or a Unix socket unless --metrics-allow-remote is given", ["--metrics-listen", "0.0.0.0:9464"] },
        { "--metrics-listen: '127.0.0.1' is not HOST:PORT (an IP address and a port, e.g. 127.0.0.1:9464) or unix:/PATH", ["--metrics-listen", "127.0.0.1"] },
        { "--metrics-listen: 'unix:rel.sock': a unix: address needs an absolute path shorter than 108 bytes", ["--metrics-listen", "unix:rel.sock"] },
        { "--metrics-allow-remote needs --metrics-listen", ["--metrics-allow-remote"] },
        { "VM 1: socket path '/nonexistent/dir/s.sock': directory '/nonexistent/dir' does not exist", ["--socket", "/nonexistent/dir/s.sock", "--uds-path", "/tmp/vuvcli-unused.sock"] },
    };

    [Theory]
    [MemberData(nameof(BadCommandLines))]
    public async Task Bad_command_lines_exit_2_with_one_line_on_stderr(string expected, string[] args)
    {
        int exitCode = await App().RunAsync(args, TestContext.Current.CancellationToken);

        Assert.Equal(ExitCodes.Usage, exitCode);
        Assert.Equal($"vhost-user-vsock: error: {expected}\n", _error.ToString().ReplaceLineEndings("\n"));
        Assert.Empty(_output.ToString());
    }

    [Fact]
    public async Task Validation_failures_exit_2_with_one_line_on_stderr()
    {
        File.WriteAllText(_dir.File("vm4.sock"), "a regular file");
        var cases = new (string Expected, string[] Args)[]
        {
            ("VMs 1 and 2 both have guest CID 3", ["--vm", Vm(3), "--vm", $"socket={_dir.File("a")},uds-path={_dir.File("b")}"]),
            ($"VMs 1 and 2 both use the path '{_dir.File("vhost3.sock")}' (socket of VM 1, socket of VM 2)", ["--vm", Vm(3), "--vm", $"guest-cid=5,socket={_dir.File("vhost3.sock")},uds-path={_dir.File("b")}"]),
            ($"VM 1: uds-path path '{_dir.File("vm4.sock")}' exists and is not a socket (refusing to replace it)", ["--vm", Vm(4)]),
        };

        foreach ((string expected, string[] args) in cases)
        {
            _error.GetStringBuilder().Clear();
            int exitCode = await App().RunAsync(args, TestContext.Current.CancellationToken);

            Assert.Equal(ExitCodes.Usage, exitCode);
            Assert.Equal($"vhost-user-vsock: error: {expected}\n", _error.ToString().ReplaceLineEndings("\n"));
        }
    }

    [Fact]
    public async Task Help_and_version_exit_0_on_stdout()
    {
        Assert.Equal(ExitCodes.Success, await App().RunAsync(["--help"], TestContext.Current.CancellationToken));
        Assert.Contains("Usage:", _output.ToString(), StringComparison.Ordinal);
        Assert.Contains("--vm <key=value,...>", _output.ToString(), StringComparison.Ordinal);

        _output.GetStringBuilder().Clear();
        Assert.Equal(ExitCodes.Success, await App().RunAsync(["--version"], TestContext.Current.CancellationToken));
        Assert.Equal(DaemonApp.Version(), _output.ToString().Trim());

        _output.GetStringBuilder().Clear();
        Assert.Equal(ExitCodes.Success, await App().RunAsync(["-V"], TestContext.Current.CancellationToken));
        Assert.Equal(DaemonApp.Version(), _output.ToString().Trim());
        Assert.Empty(_error.ToString());
    }

    [Fact(Timeout = 60_000)]
    public async Task No_arguments_serve_the_default_vm_until_stopped_then_remove_the_sockets()
    {
        var server = new RecordingVmServer(1);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        string directory = Path.Join(_dir.Path, "vhost-user-vsock");

        Task<int> run = App(server).RunAsync([], stop.Token);
        await server.AllStarted.WaitAsync(TestContext.Current.CancellationToken);

        VmConfig vm = Assert.Single(server.Started.Values);
        Assert.Equal(new VmConfig { SocketPath = Path.Join(directory, "vhost-user-vsock-3.sock"), UdsPath = Path.Join(directory, "vsock-3.sock") }, vm);
        Assert.True(File.Exists(vm.SocketPath) && File.Exists(vm.UdsPath));

        await stop.CancelAsync();

        Assert.Equal(ExitCodes.Success, await run);
        Assert.True(server.Stopped[3]);
        Assert.True(server.Disposed);
        Assert.False(File.Exists(vm.SocketPath));
        Assert.False(File.Exists(vm.UdsPath));
        Assert.True(Directory.Exists(directory));
        Assert.Empty(_error.ToString());
    }

    [Fact(Timeout = 60_000)]
    public async Task Stale_sockets_are_removed_before_the_vms_start()
    {
        UnixSockets.CreateStale(_dir.File("vhost3.sock"));
        UnixSockets.CreateStale(_dir.File("vm3.sock"));
        var server = new RecordingVmServer(2);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);

        Task<int> run = App(server).RunAsync(["--vm", Vm(3), "--vm", Vm(4, ",groups=other")], stop.Token);
        await server.AllStarted.WaitAsync(TestContext.Current.CancellationToken);
        await stop.CancelAsync();

        Assert.Equal(ExitCodes.Success, await run);
        Assert.True(server.PathsWereFreeAtStart[3]);
        Assert.True(server.PathsWereFreeAtStart[4]);
        Assert.Equal(new[] { "other" }, server.Started[4].Groups);
        Assert.Empty(Directory.GetFileSystemEntries(_dir.Path));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_failing_vm_stops_the_others_and_exits_1()
    {
        var server = new RecordingVmServer(3) { FailCid = 4 };

        int exitCode = await App(server).RunAsync(["--vm", Vm(3), "--vm", Vm(4), "--vm", Vm(5)], TestContext.Current.CancellationToken);

        Assert.Equal(ExitCodes.Failure, exitCode);
        Assert.True(server.Stopped[3]);
        Assert.True(server.Stopped[5]);
        Assert.Empty(Directory.GetFileSystemEntries(_dir.Path));
    }

    [Fact(Timeout = 60_000)]
    public async Task A_vm_returning_unasked_stops_the_daemon_and_exits_1()
    {
        var server = new RecordingVmServer(2) { ReturnCid = 3 };

        int exitCode = await App(server).RunAsync(["--vm", Vm(3), "--vm", Vm(4)], TestContext.Current.CancellationToken);

        Assert.Equal(ExitCodes.Failure, exitCode);
        Assert.True(server.Stopped[4]);
    }
}
