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

    [Theory]
    [InlineData("--capture", "/tmp/all.pcap", "must contain {cid}")]
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
}
