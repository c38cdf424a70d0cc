using System.Diagnostics;
using VirtioVsock.Fuzz.Engine;

namespace VirtioVsock.Fuzz.Tests;

/// <summary>
/// Every fuzz target over its checked-in corpus (seeds and finding reproducers) and a fixed number of
/// deterministic mutations, so each build exercises the targets without AFL. A finding fails the test with
/// a minimized input in hex (also written to the temp folder): add it to <c>fuzz/corpus/&lt;target&gt;/</c>.
/// </summary>
public sealed class TargetTests
{
    /// <summary>The mutator's seed: fixed, so every run tries the same inputs.</summary>
    private const int Seed = 0x5eed_2025;

    /// <summary>
    /// Mutations per target and a time cap each. On a loaded two-core machine (other builds and QEMU guests running)
    /// the old caps of 2-6 s stopped every target early, at 29-84% of its mutations, and the test passed silently;
    /// these caps (44 s together, worst case) let a loaded machine get through most of the budget, and the reached
    /// fraction is printed and checked against <see cref="MinReachedFraction"/>.
    /// </summary>
    private static readonly Dictionary<string, (int Mutations, TimeSpan Cap)> Budgets = new()
    {
        ["packet-tx"] = (3000, TimeSpan.FromSeconds(8)),
        ["packet-rx"] = (3000, TimeSpan.FromSeconds(8)),
        ["connect-line"] = (5000, TimeSpan.FromSeconds(6)),
        ["device-tx"] = (800, TimeSpan.FromSeconds(10)),
        ["vhost-user-message"] = (800, TimeSpan.FromSeconds(12)),
    };

    /// <summary>
    /// The least fraction of the planned mutations a run must reach before its time cap. The caps are several times
    /// what an idle machine needs, so a run below this on a loaded two-core machine covered too little to count as a
    /// pass: it fails and says how far it got, rather than passing silently.
    /// </summary>
    private const double MinReachedFraction = 0.25;

    public static TheoryData<string> Targets => Corpus.TargetNames();

    [Theory]
    [MemberData(nameof(Targets))]
    public void CorpusAndMutationsFindNothing(string name)
    {
        FuzzTarget target = FuzzTargets.Find(name)!;
        IReadOnlyList<(string Name, byte[] Data)> corpus =
            [.. Corpus.Of(name).Where(file => !KnownFindings.Open.Any(open => open.Target == name && open.File == file.Name))];
        Assert.NotEmpty(corpus);
        (int mutations, TimeSpan cap) = Budgets[name];
        var stopwatch = Stopwatch.StartNew();
        FuzzFinding? finding = MutationRun.Run(
            target, corpus, mutations, Seed, cap, out int executed, KnownFindings.IsKnown, out int knownHits, out int mutated, input => KnownFindings.AvoidOpen(name, input));
        double reached = (double)mutated / mutations;
        ITestOutputHelper? output = TestContext.Current.TestOutputHelper;
        output?.WriteLine(
            $"{name}: {executed} inputs ({corpus.Count} corpus files) in {stopwatch.Elapsed.TotalSeconds:F1} s; " +
            $"{mutated} of {mutations} planned mutations ({reached:P0} of the budget{(finding is null && mutated < mutations ? $", stopped by the {cap.TotalSeconds} s time cap" : string.Empty)}); " +
            $"{knownHits} hit a known open finding");
        if (finding is null)
        {
            Assert.True(
                reached >= MinReachedFraction,
                $"{name}: the {cap.TotalSeconds} s time cap stopped the run at {mutated} of {mutations} planned mutations ({reached:P0}), " +
                $"below the minimum of {MinReachedFraction:P0} that still means something on a loaded two-core machine. " +
                "Nothing was found, but too little was tried to call it a pass: the target got slower or the machine is overloaded.");
            return;
        }

        byte[] minimized = Minimizer.Minimize(target, finding, TimeSpan.FromSeconds(20), attempts: 3);
        string path = Path.Combine(Path.GetTempPath(), $"{name}-finding-{Environment.ProcessId}.bin");
        File.WriteAllBytes(path, minimized);
        Assert.Fail($"{finding}{Environment.NewLine}minimized ({minimized.Length} bytes, saved to {path}): {Convert.ToHexString(minimized)}");
    }
}
