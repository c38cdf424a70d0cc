using System.Globalization;
using VhostUserVsock.Tests.Guest;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// The Linux kernel's own vsock test suite (tools/testing/vsock) between two real guests through
/// the daemon's sibling relay, for the 7.x (sid) and 6.12 (trixie) kernels: one test case per suite
/// test and kernel, passing only when every one of its <see cref="VsockSuiteCatalog.Repetitions"/>
/// runs passed; vsock_perf and a byte-exact pattern transfer both ways. Each kernel's pair boots
/// once (<see cref="VsockSuitePair"/>) and every case reads its results.
/// </summary>
[Collection(RealGuestCollection.Name)]
public sealed class KernelVsockSuiteTests(ITestOutputHelper output)
{
    /// <summary>(kernel, id, name) of every runnable suite test; one placeholder row per kernel whose image is not built.</summary>
    public static TheoryData<string, int, string> SuiteTests()
    {
        var data = new TheoryData<string, int, string>();
        foreach (var kernel in VsockSuiteCatalog.Kernels)
        {
            if (VsockSuiteCatalog.RunnableTests(kernel) is { } tests)
            {
                foreach (var (id, name) in tests)
                    data.Add(kernel, id, name);
            }
            else
            {
                data.Add(kernel, -1, "(suite image not built)");
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(SuiteTests))]
    public async Task Suite_test_passes_every_run(string kernel, int id, string name)
    {
        var result = await RunAsync(kernel);
        var runs = result.For(id);
        var failed = runs.Where(r => !r.Passed).ToList();
        var times = runs.Select(r => r.ServerSeconds).DefaultIfEmpty(0);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{kernel} ({result.KernelVersion}) #{id} {name}: {runs.Count - failed.Count}/{runs.Count} runs passed; per run {times.Min():0.0}-{times.Max():0.0} s"));
        Assert.True(
            runs.Count == result.Repetitions && failed.Count == 0,
            $"{kernel} suite test #{id} '{name}': {runs.Count - failed.Count} of {result.Repetitions} runs passed ({runs.Count} ran)"
            + (result.Problem is null ? "" : $"; {result.Problem}") + "\n"
            + string.Join('\n', failed.Take(3).Select(r => r.Describe()))
            + (runs.Count < result.Repetitions || failed.Count > 0 ? "\n" + result.Diagnostics : ""));
    }

    [Theory]
    [InlineData(VsockSuiteCatalog.Sid)]
    [InlineData(VsockSuiteCatalog.Trixie)]
    public async Task Perf_and_pattern_both_ways_between_the_guests(string kernel)
    {
        var result = await RunAsync(kernel);
        foreach (var (k, v) in result.Transfers.OrderBy(p => p.Key, StringComparer.Ordinal))
            output.WriteLine($"{k}: {v}");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{kernel}: pair wall time {result.WallTime.TotalSeconds:0} s for {result.Repetitions} repetitions of {result.Runs.Select(r => r.Id).Distinct().Count()} tests"));
        Assert.Null(result.Problem);
        output.WriteLine("daemon log: " + string.Join(", ", result.DaemonLogCounts.Select(p => $"{p.Key} {p.Value}")));
        // every guest-to-guest connection is logged when it opens and when it ends (both VMs' relays)
        Assert.True(result.DaemonLogCounts["sibling-opened"] > 0, $"{kernel}: no 'sibling connection ... opened' debug event in the daemon log\n{result.Diagnostics}");
        Assert.True(result.DaemonLogCounts["sibling-closed"] > 0, $"{kernel}: no 'sibling connection ... closed' debug event in the daemon log\n{result.Diagnostics}");
        Assert.Equal(0, result.DaemonLogCounts["errors"]);
        var pattern = PatternBytes();
        foreach (var name in new[] { "perf-tx-a", "perf-rx-a", "perf-tx-b", "perf-rx-b", "pat-rx-a", "pat-tx-a", "pat-rx-b", "pat-tx-b" })
        {
            Assert.True(result.Transfers.TryGetValue(name, out var line), $"{kernel}: no RESULT for {name}\n{result.Diagnostics}");
            var parsed = GuestResult.TryParse(line)!;
            Assert.True(parsed.Succeeded, $"{kernel}: {line}\n{result.Diagnostics}");
            if (name.StartsWith("pat-rx", StringComparison.Ordinal))
                Assert.Equal(pattern, parsed.Bytes);
        }
        // vsock_perf's receiver counted everything the sender sent (both ways)
        foreach (var (tx, rx) in new[] { ("perf-tx-b", "perf-rx-a"), ("perf-tx-a", "perf-rx-b") })
            Assert.True(result.Transfers.ContainsKey(tx + ".perf") && result.Transfers.ContainsKey(rx + ".bytes"), $"{kernel}: vsock_perf printed no totals\n{result.Diagnostics}");
    }

    [Theory]
    [InlineData(VsockSuiteCatalog.Sid)]
    [InlineData(VsockSuiteCatalog.Trixie)]
    public void Every_skipped_test_exists_in_the_suite(string kernel)
    {
        var tests = VsockSuiteCatalog.Tests(kernel);
        if (tests is null)
        {
            RealGuestEnvironment.Require(VsockSuiteCatalog.ImageSuite(kernel));
            return;
        }
        foreach (var name in VsockSuiteCatalog.Skipped[kernel].Keys)
            Assert.Contains(name, tests.Select(t => t.Name));
        Assert.True(tests.Count >= 20, $"{kernel}: only {tests.Count} tests listed");
    }

    private static long PatternBytes() => VsockSuitePair.PatternBytes;

    private static async Task<VsockSuiteResult> RunAsync(string kernel)
    {
        var image = RealGuestEnvironment.Require(VsockSuiteCatalog.ImageSuite(kernel));
        if (DaemonProcess.Locate() is null)
            RealGuestEnvironment.SkipOrFail(kernel, "the daemon is not built");
        return await VsockSuitePair.GetAsync(kernel, image);
    }
}
