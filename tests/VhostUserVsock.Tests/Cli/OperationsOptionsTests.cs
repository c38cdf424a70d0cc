using VhostUserVsock.Cli;
using VhostUserVsock.Configuration;

namespace VhostUserVsock.Tests.Cli;

/// <summary>The operating options added to rust-vmm's command line (<c>--capture</c>, ...): parsed into <see cref="OperationsConfig"/>, refused in one line.</summary>
public sealed class OperationsOptionsTests
{
    private static readonly DefaultPaths Defaults = DefaultPaths.FromRuntimeDirectory("/run/user/1000");

    private static DaemonConfig Parse(params string[] args) => new DaemonCommandLine(Defaults).ParseConfig(args);

    [Fact]
    public void Without_operating_options_nothing_changes()
    {
        DaemonConfig config = Parse("--socket", "/tmp/v.socket", "--uds-path", "/tmp/v.vsock");
        Assert.Equal(new OperationsConfig(), config.Operations);
        Assert.Null(config.Operations.CaptureFileOf(3));
    }

    [Fact]
    public void Capture_path_and_snap_length_with_the_cid_substituted()
    {
        DaemonConfig config = Parse(
            "--vm", "guest-cid=3,socket=/tmp/a.socket,uds-path=/tmp/a.vsock",
            "--vm", "guest-cid=4,socket=/tmp/b.socket,uds-path=/tmp/b.vsock",
            "--capture", "/var/tmp/vm{cid}.pcap", "--capture-snaplen", "128");

        Assert.Equal(128, config.Operations.CaptureSnapLength);
        Assert.Equal("/var/tmp/vm3.pcap", config.Operations.CaptureFileOf(3));
        Assert.Equal("/var/tmp/vm4.pcap", config.Operations.CaptureFileOf(4));
    }

    [Fact]
    public void One_vm_may_capture_to_a_plain_path()
    {
        DaemonConfig config = Parse("--socket", "/tmp/v.socket", "--uds-path", "/tmp/v.vsock", "--capture", "/tmp/v.pcap");
        Assert.Equal("/tmp/v.pcap", config.Operations.CaptureFileOf(3));
        Assert.Equal(OperationsConfig.DefaultSnapLength, config.Operations.CaptureSnapLength);
    }

    [Fact]
    public void Polling_is_on_at_32_us_unless_told_and_0_turns_it_off()
    {
        Assert.Equal(TimeSpan.FromMicroseconds(32), Parse("--socket", "/tmp/v.socket", "--uds-path", "/tmp/v.vsock").Operations.PollMax);
        Assert.Equal(TimeSpan.FromMicroseconds(100), Parse("--socket", "/tmp/v.socket", "--uds-path", "/tmp/v.vsock", "--poll-max-us", "100").Operations.PollMax);
        Assert.Equal(TimeSpan.Zero, Parse("--socket", "/tmp/v.socket", "--uds-path", "/tmp/v.vsock", "--poll-max-us", "0").Operations.PollMax);
    }

    [Theory]
    [InlineData("--capture", "/tmp/all.pcap", "must contain {cid}")]
    [InlineData("--poll-max-us", "1001", "--poll-max-us: '1001' is not a number of microseconds from 0 to 1000")]
    [InlineData("--poll-max-us", "-5", "--poll-max-us: '-5'")]
    [InlineData("--poll-max-us", "32us", "--poll-max-us: '32us'")]
    [InlineData("--capture-snaplen", "70000", "--capture-snaplen: '70000'")]
    [InlineData("--capture-snaplen", "-1", "--capture-snaplen: '-1'")]
    public void Bad_operating_options_are_one_line_errors(string option, string value, string expected)
    {
        var error = Assert.Throws<ConfigurationException>(() => Parse(
            "--vm", "guest-cid=3,socket=/tmp/a.socket,uds-path=/tmp/a.vsock",
            "--vm", "guest-cid=4,socket=/tmp/b.socket,uds-path=/tmp/b.vsock",
            option, value));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void Allow_rules_each_direction_deny_by_default_once_given()
    {
        DaemonConfig config = Parse(
            "--socket", "/tmp/v.socket", "--uds-path", "/tmp/v.vsock",
            "--allow", "guest-to-host:1024-2047", "--allow", "host-to-guest:22,uid=1000", "--allow", "host-to-guest:80");
        Virtio.Vsock.Backends.Unix.Access.VsockAccessRules rules = Assert.IsType<Virtio.Vsock.Backends.Unix.Access.VsockAccessRules>(config.Operations.Access?.ForHostSide());
        Assert.True(rules.AllowsGuestConnect(1500));
        Assert.False(rules.AllowsGuestConnect(2048));
        Assert.True(rules.AllowsHostConnect(22, new(1, 1000, 1000)));
        Assert.False(rules.AllowsHostConnect(22, new(1, 0, 0)));
        Assert.False(rules.AllowsHostConnect(22, null));
        Assert.True(rules.AllowsHostConnect(80, null));
        Assert.False(rules.AllowsHostConnect(81, new(1, 1000, 1000)));

        var hostOnly = Parse("--socket", "/tmp/v.socket", "--uds-path", "/tmp/v.vsock", "--allow", "host-to-guest:5000").Operations.Access!.ForHostSide()!;
        Assert.True(hostOnly.AllowsGuestConnect(9999));
    }

    [Theory]
    [InlineData("sideways:80", "the direction is guest-to-host, host-to-guest or sibling")]
    [InlineData("sibling:2", "guest CID 2 is the host's CID")]
    [InlineData("sibling:4,x", "'x' is not a guest CID")]
    [InlineData("host-to-guest:80-70", "is not a port or a range")]
    [InlineData("guest-to-host:80,uid=0", "host-to-guest rules only")]
    [InlineData("host-to-guest:80,pid=3", "unknown condition")]
    [InlineData("host-to-guest:80,uid=root", "not a numeric id")]
    public void Bad_allow_rules_are_one_line_errors(string rule, string expected)
    {
        var error = Assert.Throws<ConfigurationException>(() => Parse("--socket", "/tmp/v.socket", "--uds-path", "/tmp/v.vsock", "--allow", rule));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.StartsWith("--allow: ", error.Message, StringComparison.Ordinal);
    }
}
