using System.Net.Sockets;
using System.Runtime.Versioning;
using VhostUserVsock.Configuration;

namespace VhostUserVsock.Tests.Cli;

[SupportedOSPlatform("linux")]
public sealed class ConfigValidatorTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private VmConfig Vm(ulong cid, string? socket = null, string? uds = null) => new()
    {
        GuestCid = cid,
        SocketPath = socket ?? _dir.File($"vhost{cid}.sock"),
        UdsPath = uds ?? _dir.File($"vm{cid}.sock"),
    };

    private static DaemonConfig Config(params VmConfig[] vms) => new() { Vms = [.. vms] };

    private static string FirstProblem(DaemonConfig config, IFileSystemProbe? probe = null)
    {
        var error = Assert.Throws<ConfigurationException>(() => ConfigValidator.Validate(config, probe));
        Assert.DoesNotContain('\n', error.Message);
        return error.Message;
    }

    [Fact]
    public void Valid_configuration_passes()
    {
        DaemonConfig config = Config(Vm(3), Vm(4), Vm(0xffff_fffe));

        ConfigValidator.Validate(config);
        Assert.Empty(ConfigValidator.FindProblems(config));
    }

    [Theory]
    [InlineData(0ul, "VM 1: guest CID 0 is reserved for the hypervisor; a guest CID is 3 to 4294967294")]
    [InlineData(1ul, "VM 1: guest CID 1 is reserved for local loopback; a guest CID is 3 to 4294967294")]
    [InlineData(2ul, "VM 1: guest CID 2 is the host's CID; a guest CID is 3 to 4294967294")]
    [InlineData(0xffff_fffful, "VM 1: guest CID 4294967295 is reserved (VMADDR_CID_ANY); a guest CID is 3 to 4294967294")]
    [InlineData(0x1_0000_0000ul, "VM 1: guest CID 4294967296 is above 32 bits; a guest CID is 3 to 4294967294")]
    [InlineData(ulong.MaxValue, "VM 1: guest CID 18446744073709551615 is above 32 bits; a guest CID is 3 to 4294967294")]
    public void Reserved_cids_are_refused(ulong cid, string expected) =>
        Assert.Equal(expected, FirstProblem(Config(Vm(cid))));

    [Fact]
    public void Duplicate_cids_are_refused() =>
        Assert.Equal(
            "VMs 1 and 3 both have guest CID 5",
            FirstProblem(Config(Vm(5), Vm(6), Vm(5, _dir.File("other-s"), _dir.File("other-u")))));

    [Fact]
    public void Duplicate_paths_are_refused()
    {
        Assert.Equal(
            $"VMs 1 and 2 both use the path '{_dir.File("vhost3.sock")}' (socket of VM 1, socket of VM 2)",
            FirstProblem(Config(Vm(3), Vm(4, socket: _dir.File("vhost3.sock")))));
        Assert.Equal(
            $"VMs 1 and 2 both use the path '{_dir.File("vm3.sock")}' (uds-path of VM 1, uds-path of VM 2)",
            FirstProblem(Config(Vm(3), Vm(4, uds: _dir.File("vm3.sock")))));
        Assert.Equal(
            $"VMs 1 and 2 both use the path '{_dir.File("vm3.sock")}' (uds-path of VM 1, socket of VM 2)",
            FirstProblem(Config(Vm(3), Vm(4, socket: _dir.File("vm3.sock")))));
        Assert.Equal(
            $"VM 1: socket and uds-path are the same path '{_dir.File("x.sock")}'",
            FirstProblem(Config(Vm(3, _dir.File("x.sock"), _dir.File("x.sock")))));
    }

    [Fact]
    public void Out_of_range_values_built_in_code_are_refused()
    {
        Assert.Equal(
            "VM 1: queue size 1000 is not a power of two from 1 to 32768",
            FirstProblem(Config(Vm(3) with { QueueSize = 1000 })));
        Assert.Equal(
            "VM 1: queue size 0 is not a power of two from 1 to 32768",
            FirstProblem(Config(Vm(3) with { QueueSize = 0 })));
        Assert.Equal(
            "VM 1: queue size 65536 is not a power of two from 1 to 32768",
            FirstProblem(Config(Vm(3) with { QueueSize = 65536 })));
        Assert.Equal(
            "VM 1: tx buffer size 0 is out of range; it is 4096 to 16777216 bytes (4 KiB to 16 MiB)",
            FirstProblem(Config(Vm(3) with { TxBufferSize = 0 })));
        Assert.Equal(
            "VM 2: tx buffer size 4294967295 is out of range; it is 4096 to 16777216 bytes (4 KiB to 16 MiB)",
            FirstProblem(Config(Vm(3), Vm(4) with { TxBufferSize = uint.MaxValue })));
        Assert.Equal(
            "VM 1: no group (the default is 'default')",
            FirstProblem(Config(Vm(3) with { Groups = [] })));
        Assert.Equal(
            "VM 1: group name 'a b' contains ' '; a group name has no spaces, '+', ',' or '='",
            FirstProblem(Config(Vm(3) with { Groups = ["a b"] })));
        Assert.Equal("no VM to serve", FirstProblem(Config()));
        ConfigValidator.Validate(Config(Vm(3) with { QueueSize = 32768, TxBufferSize = 16 * 1024 * 1024 }));
        ConfigValidator.Validate(Config(Vm(3) with { QueueSize = 1, TxBufferSize = 4096 }));
    }

    [Fact]
    public void Missing_directory_is_refused()
    {
        string socket = _dir.File("missing/vhost.sock");

        Assert.Equal(
            $"VM 1: socket path '{socket}': directory '{_dir.File("missing")}' does not exist",
            FirstProblem(Config(Vm(3, socket: socket))));
    }

    [Fact]
    public void Parent_that_is_a_file_is_refused()
    {
        File.WriteAllText(_dir.File("plain"), "x");
        string uds = _dir.File("plain/vm.sock");

        Assert.Equal(
            $"VM 1: uds-path path '{uds}': '{_dir.File("plain")}' is not a directory",
            FirstProblem(Config(Vm(3, uds: uds))));
    }

    [Fact]
    public void Read_only_directory_is_refused()
    {
        var probe = new FakeFileSystemProbe();
        probe.ReadOnlyDirectories.Add(_dir.Path);

        Assert.Equal(
            $"VM 1: socket path '{_dir.File("vhost3.sock")}': directory '{_dir.Path}' is not writable",
            FirstProblem(Config(Vm(3)), probe));
    }

    [Fact]
    public void Existing_regular_file_directory_or_symlink_is_refused()
    {
        File.WriteAllText(_dir.File("vhost3.sock"), "not a socket");
        Directory.CreateDirectory(_dir.File("vm3.sock"));
        File.CreateSymbolicLink(_dir.File("link.sock"), _dir.File("vhost3.sock"));

        Assert.Equal(
            new[]
            {
                $"VM 1: socket path '{_dir.File("vhost3.sock")}' exists and is not a socket (refusing to replace it)",
                $"VM 1: uds-path path '{_dir.File("vm3.sock")}' is an existing directory",
                $"VM 2: socket path '{_dir.File("link.sock")}' exists and is not a socket (refusing to replace it)",
            },
            ConfigValidator.FindProblems(Config(Vm(3), Vm(4, socket: _dir.File("link.sock")))));
    }

    [Fact]
    public void Stale_socket_is_accepted_but_a_live_one_is_in_use()
    {
        UnixSockets.CreateStale(_dir.File("vhost3.sock"));
        Assert.Equal(PathKind.Socket, UnixFileSystemProbe.Instance.GetKind(_dir.File("vhost3.sock")));
        ConfigValidator.Validate(Config(Vm(3)));

        using Socket live = UnixSockets.Listen(_dir.File("vm3.sock"));
        Assert.Equal(
            $"VM 1: uds-path path '{_dir.File("vm3.sock")}' is in use: a process is listening on it",
            FirstProblem(Config(Vm(3))));
    }

    [Fact]
    public void Paths_too_long_for_a_unix_socket_are_refused()
    {
        string socket = "/tmp/" + new string('s', 103);
        Assert.Equal(108, socket.Length);

        Assert.Equal(
            $"VM 1: socket path '{socket}' is 108 bytes long; a Unix socket path is at most 107",
            FirstProblem(Config(Vm(3, socket: socket))));
    }

    [Fact]
    public void Relative_paths_built_in_code_are_refused() =>
        Assert.Equal(
            "VM 1: socket path 'rel.sock' is not absolute",
            FirstProblem(Config(Vm(3, socket: "rel.sock"))));

    [Fact]
    public void All_problems_are_listed_in_order()
    {
        IReadOnlyList<string> problems = ConfigValidator.FindProblems(Config(Vm(2), Vm(2, _dir.File("a"), _dir.File("b")) with { QueueSize = 3 }));

        Assert.Equal(
            new[]
            {
                "VM 1: guest CID 2 is the host's CID; a guest CID is 3 to 4294967294",
                "VM 2: guest CID 2 is the host's CID; a guest CID is 3 to 4294967294",
                "VM 2: queue size 3 is not a power of two from 1 to 32768",
                "VMs 1 and 2 both have guest CID 2",
            },
            problems);
    }
}
