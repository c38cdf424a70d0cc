using VhostUserVsock.Tests.Guest;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// Host &lt;-&gt; guest counterparts of the kernel vsock suite's checks (see
/// <see cref="ScenarioCatalog.ShutRdGuestThenHostSendFails"/> and its neighbours), in one boot per
/// kernel that has the suite's fixes: trixie (6.12) and sid (7.x). Linux 6.1 is left out: it sends no
/// credit update when SO_RCVLOWAT changes (fixed in 6.8), so the SO_RCVLOWAT case would test the
/// guest kernel, not the device.
/// </summary>
[Collection(RealGuestCollection.Name)]
public sealed class SuiteCounterpartTests(ITestOutputHelper output)
{
    /// <summary>The scenarios of one boot, in guest order.</summary>
    public static IReadOnlyList<GuestScenario> Scenarios() =>
    [
        ScenarioCatalog.ShutRdGuestThenHostSendFails("shutrd-guest", 7201),
        ScenarioCatalog.ShutRdHostThenGuestSendFails("shutrd-host", 7101),
        ScenarioCatalog.PeekAfterPartialRead("peek-partial", 7102, 48 * 1024),
        ScenarioCatalog.RcvLowatCreditUpdate("rcvlowat-def", 7202, low: false),
        ScenarioCatalog.RcvLowatCreditUpdate("rcvlowat-low", 7203, low: true),
        // 700,000 bytes: well past what the device can take before the guest blocks, which is its 256 KiB
        // credit window plus what the host socket holds, and that depends on how many 7-byte packets share a
        // sendmsg (a TX run of 16 makes 112-byte skbs: about 31 KB in a 208 KiB socket buffer). 280,000 bytes
        // (40,000 packets) let a guest finish without ever blocking when its packets arrived in runs.
        // On trixie (6.12), about one run in six (in earlier sessions, before the notification watch), the guest's
        // whole vsock TX path stalled for the 30 s idle timeout: the daemon's snapshots showed the device idle with
        // the guest's full credit, no TX chain waiting, and 200 KB the guest's send() had accepted never handed over;
        // the stall ended at once when the device next wrote to the guest's RX queue (with a shared vector, an RX
        // interrupt also reaps TX). A TX interrupt lost on its way, or TX callbacks left disabled: the device's
        // notification watch now notifies a driver that stopped moving again after a second (see VsockDevice's
        // NotificationWatch), and this test prints how often it had to.
        ScenarioCatalog.SmallPacketBackpressure("small-packets", 7103, 100000, 7),
        ScenarioCatalog.TxCreditBounds("credit-bounds", 7204, 4096, 1 << 20),
    ];

    [Theory]
    [InlineData(GuestSuite.Trixie)]
    [InlineData(NewerKernelGuestTests.Sid)]
    public async Task Suite_counterparts_host_and_guest(string suite)
    {
        var image = RealGuestEnvironment.Require(suite);
        var ct = TestContext.Current.CancellationToken;
        string control = Path.Join(Path.GetTempPath(), $"vuvc-{Guid.NewGuid():N}"[..13] + ".sock");
        await using var daemon = await DaemonProcess.StartAsync(logLevel: "debug", extraArguments: ["--control", control], cancellationToken: ct);
        using var watching = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var snapshots = new Queue<string>();
        var watcher = ConnectionSnapshots.CollectAsync(control, snapshots, watching.Token);
        var report = await GuestRun.RunAsync(image, daemon, Scenarios(), timeout: TimeSpan.FromSeconds(420), commandTimeout: TimeSpan.FromSeconds(150), ct);
        await watching.CancelAsync();
        await watcher;
        output.WriteLine(report.Summary());
        // notifications the device had to send again (a driver that stopped moving: a lost interrupt, see above)
        string[] repeats = [.. report.DaemonLog.Split('\n').Where(l => l.Contains("notifying again", StringComparison.Ordinal))];
        output.WriteLine($"notifications sent again: {repeats.Length}" + (repeats.Length == 0 ? string.Empty : "\n" + string.Join("\n", repeats.TakeLast(20))));
        // each scenario's host-side log (guest lines, what the host saw): the evidence when a timing-dependent check fails
        foreach (var scenario in report.Scenarios.Values)
            output.WriteLine($"---- {scenario.Name} ----\n{scenario.Log}");
        // the device's view of its connections (state, bytes held for the host, credit, stall reason), every 2 s
        if (report.Scenarios.Values.Any(s => !s.Passed))
        {
            output.WriteLine("---- daemon connections every 2 s (control socket) ----\n" + ConnectionSnapshots.Format(snapshots));
            // every vhost-user message with its time: a SET_VRING_CALL in the middle of a run swaps the call descriptor
            output.WriteLine("---- vhost-user messages (daemon log) ----\n" + string.Join("\n",
                report.DaemonLog.Split('\n').Where(l => l.Contains("vhost-user <-", StringComparison.Ordinal)).TakeLast(200)));
        }
        report.AssertClean();
        // the device's per-connection debug events: guest- and host-initiated opens, and closes
        foreach (var expected in new[] { ") opened by the guest", ") opened by the host", " closed in state " })
            Assert.Contains(expected, report.DaemonLog, StringComparison.Ordinal);
        var failed = report.Scenarios.Values.Where(s => !s.Passed).ToList();
        Assert.True(failed.Count == 0, string.Join("\n\n", failed.Select(s => $"{suite} {s.Name}: {s.Failure}")));
    }
}
