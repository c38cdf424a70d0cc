using System.Globalization;
using VhostUserVsock.Tests.Guest;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// Newer guest kernels, whose driver lays buffers out differently: Debian trixie's 6.12 (header and
/// payload in one descriptor; guest->host payloads over 32 KiB spread over three or more
/// descriptors) and, when built, sid's 7.x. Echo both ways, a 36 KiB and a 64 MiB guest->host
/// stream (the many-descriptor TX layout), 64 MiB host->guest and SEQPACKET, in one boot each.
/// </summary>
[Collection(RealGuestCollection.Name)]
public sealed class NewerKernelGuestTests(ITestOutputHelper output)
{
    /// <summary>sid (7.x), built by scripts/install-test-deps.sh like trixie.</summary>
    public const string Sid = "sid";

    [Theory]
    [InlineData(GuestSuite.Trixie)]
    [InlineData(Sid)]
    public async Task Echo_and_64_MiB_each_way(string suite)
    {
        var image = RealGuestEnvironment.Require(suite, optional: false);
        var ct = TestContext.Current.CancellationToken;
        await using var daemon = await DaemonProcess.StartAsync(cancellationToken: ct);
        var report = await GuestRun.RunAsync(
            image,
            daemon,
            [
                ScenarioCatalog.EchoGuestToHost("echo-g2h", 6001, 1 << 20),
                ScenarioCatalog.EchoHostToGuest("echo-h2g", 5001, 1 << 20),
                ScenarioCatalog.BulkGuestToHost("send-36k", 6002, 36 * 1024),
                ScenarioCatalog.BulkGuestToHost("bulk-g2h", 6003, BookwormRunFixture.BulkBytes),
                ScenarioCatalog.BulkHostToGuest("bulk-h2g", 5003, BookwormRunFixture.BulkBytes),
                ScenarioCatalog.SeqPacketGuestToHost("seq-g2h", 6004, ScenarioCatalog.SeqSizes),
            ],
            timeout: TimeSpan.FromSeconds(200),
            commandTimeout: TimeSpan.FromSeconds(120),
            ct);
        output.WriteLine(report.Summary());
        foreach (var s in report.Scenarios.Values.Where(s => s.Metrics.Count > 0))
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{s.Name}: {string.Join(", ", s.Metrics.Select(m => $"{m.Key} {m.Value:0.0}"))}"));
        }
        report.AssertClean();
        foreach (var s in report.Scenarios.Values)
            Assert.True(s.Passed, $"{suite} {s.Name}: {s.Failure}");
    }
}
