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
    /// Mutations per target: every run tries all of them (the same inputs each time, from <see cref="Seed"/>), so the
    /// verdict depends on what the targets do with those inputs, never on how fast a loaded machine gets through them.
    /// (A time cap that turned a slow run into a failure, or into a silent pass over part of the inputs, made the
    /// device-tx case fail on a loaded two-core machine: 110-153 of its 800 mutations in 10 s.)
    /// </summary>
    private static readonly Dictionary<string, int> Budgets = new()
    {
        ["packet-tx"] = 3000,
        ["packet-rx"] = 3000,
        ["connect-line"] = 5000,
        ["device-tx"] = 800,
        ["vhost-user-message"] = 800,
    };

    /// <summary>
    /// A deadline, not a budget: far beyond what any target needs for its mutations even on a loaded machine (an idle
    /// one needs seconds). Reaching it means a target stopped making progress, and fails the test.
    /// </summary>
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(5);

    public static TheoryData<string> Targets => Corpus.TargetNames();

    [Theory]
    [MemberData(nameof(Targets))]
    public void CorpusAndMutationsFindNothing(string name)
    {
        FuzzTarget target = FuzzTargets.Find(name)!;
        IReadOnlyList<(string Name, byte[] Data)> corpus =
            [.. Corpus.Of(name).Where(file => !KnownFindings.Open.Any(open => open.Target == name && open.File == file.Name))];
        Assert.NotEmpty(corpus);
        int mutations = Budgets[name];
        var stopwatch = Stopwatch.StartNew();
        FuzzFinding? finding = MutationRun.Run(
            target, corpus, mutations, Seed, Deadline, out int executed, KnownFindings.IsKnown, out int knownHits, out int mutated, input => KnownFindings.AvoidOpen(name, input));
        ITestOutputHelper? output = TestContext.Current.TestOutputHelper;
        output?.WriteLine(
            $"{name}: {executed} inputs ({corpus.Count} corpus files) in {stopwatch.Elapsed.TotalSeconds:F1} s; " +
            $"{mutated} of {mutations} mutations; {knownHits} hit a known open finding");
        if (finding is null)
        {
            Assert.True(
                mutated == mutations,
                $"{name}: only {mutated} of {mutations} mutations ran before the {Deadline.TotalMinutes} min deadline: a target stopped making progress.");
            return;
        }

        byte[] minimized = Minimizer.Minimize(target, finding, TimeSpan.FromSeconds(20), attempts: 3);
        string path = Path.Combine(Path.GetTempPath(), $"{name}-finding-{Environment.ProcessId}.bin");
        File.WriteAllBytes(path, minimized);
        Assert.Fail($"{finding}{Environment.NewLine}minimized ({minimized.Length} bytes, saved to {path}): {Convert.ToHexString(minimized)}");
    }
}
