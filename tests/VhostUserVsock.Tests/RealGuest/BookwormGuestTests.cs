using System.Globalization;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// The data-path scenarios against a real Linux 6.1 guest (Debian bookworm; TX header and payload
/// in separate descriptors), all in one boot (<see cref="BookwormRunFixture"/>).
/// </summary>
[Collection(RealGuestCollection.Name)]
public sealed class BookwormGuestTests(BookwormRunFixture fixture, ITestOutputHelper output) : IClassFixture<BookwormRunFixture>
{
    [Fact]
    public async Task Guest_boots_with_the_device_runs_every_scenario_cleanly_and_the_daemon_survives()
    {
        var report = await fixture.ReportAsync();
        output.WriteLine(report.Summary());
        report.AssertClean();
    }

    [Fact]
    public Task Guest_to_host_echo() => Expect("echo-g2h");

    [Fact]
    public Task Host_to_guest_echo_via_CONNECT() => Expect("echo-h2g");

    [Fact]
    public Task Guest_to_host_64_MiB_with_equal_CRC32() => Expect("bulk-g2h");

    [Fact]
    public Task Host_to_guest_64_MiB_with_equal_CRC32() => Expect("bulk-h2g");

    [Fact]
    public Task Seqpacket_guest_to_host_keeps_message_boundaries() => Expect("seq-g2h");

    [Fact]
    public Task Seqpacket_host_to_guest_keeps_message_boundaries() => Expect("seq-h2g");

    [Fact]
    public Task Half_close_by_the_guest() => Expect("half-g2h");

    [Fact]
    public Task Half_close_by_the_host() => Expect("half-h2g");

    [Fact]
    public Task Guest_connect_to_a_host_port_without_socket_is_reset_fast() => Expect("refused-g2h");

    [Fact]
    public Task Guest_connect_to_a_stale_host_socket_is_reset_fast() => Expect("refused-g2h-stale");

    [Fact]
    public Task Host_connect_to_a_guest_port_without_listener_is_closed_fast() => Expect("refused-h2g");

    [Fact]
    public Task Hundred_concurrent_guest_to_host_connections() => Expect("many-g2h");

    [Fact]
    public Task Hundred_concurrent_host_to_guest_connections() => Expect("many-h2g");

    private async Task Expect(string scenario)
    {
        var report = await fixture.ReportAsync();
        var outcome = report.Scenarios[scenario];
        output.WriteLine($"{scenario} on {report.Image.Suite} (kernel {report.Ready?.Kernel}): {(outcome.Passed ? "PASS" : "FAIL")} in {outcome.Elapsed.TotalSeconds:0.0} s");
        foreach (var (key, value) in outcome.Metrics)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {key} = {value:0.##}"));
        output.WriteLine(outcome.Log);
        Assert.True(outcome.Passed, $"{scenario}: {outcome.Failure}");
    }
}
