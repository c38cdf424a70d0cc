using System.Diagnostics;

namespace VirtioVsock.Fuzz.Engine;

/// <summary>
/// Runs a target over its corpus and then over deterministic mutations of it, stopping at the first
/// finding. What the <c>mutate</c> command and the CI tests do, without AFL.
/// </summary>
public static class MutationRun
{
    /// <summary>Runs one input, turning an exception into a finding.</summary>
    /// <param name="target">The target.</param>
    /// <param name="input">The input.</param>
    /// <param name="origin">For the report.</param>
    /// <returns>The finding, or null.</returns>
    public static FuzzFinding? RunOne(FuzzTarget target, byte[] input, string origin)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(input);
        try
        {
            target.Run(input);
            return null;
        }
#pragma warning disable CA1031 // Every exception is a finding.
        catch (Exception exception)
#pragma warning restore CA1031
        {
            return new FuzzFinding(target.Name, input, exception, origin);
        }
    }

    /// <summary>Runs the corpus, then up to <paramref name="iterations"/> mutations; stops at the first finding.</summary>
    /// <param name="target">The target.</param>
    /// <param name="corpus">The inputs to start from.</param>
    /// <param name="iterations">The number of mutated inputs.</param>
    /// <param name="seed">The mutator's seed.</param>
    /// <param name="budget">A time cap.</param>
    /// <param name="executed">The number of inputs run.</param>
    /// <returns>The first finding, or null.</returns>
    public static FuzzFinding? Run(FuzzTarget target, IReadOnlyList<(string Name, byte[] Data)> corpus, int iterations, int seed, TimeSpan budget, out int executed) =>
        Run(target, corpus, iterations, seed, budget, out executed, known: null, out _, out _);

    /// <summary>Runs the corpus, then up to <paramref name="iterations"/> mutations or until <paramref name="budget"/> has passed.</summary>
    /// <param name="target">The target.</param>
    /// <param name="corpus">The inputs to start from (at least one).</param>
    /// <param name="iterations">The number of mutated inputs.</param>
    /// <param name="seed">The mutator's seed.</param>
    /// <param name="budget">A time cap (the run stops early, and says so, when it is reached).</param>
    /// <param name="executed">The number of inputs run.</param>
    /// <param name="known">Findings already reported and still open: counted in <paramref name="knownHits"/> and passed over.</param>
    /// <param name="knownHits">How many inputs hit a known finding.</param>
    /// <param name="mutations">How many of the <paramref name="iterations"/> planned mutations ran: fewer when the time cap
    /// (or a finding) stopped the run. Callers report it as the reached fraction of the budget.</param>
    /// <param name="prepare">Applied to each mutated input before it runs (see <see cref="KnownFindings.AvoidOpen"/>).</param>
    /// <returns>The first finding that is not known, or null.</returns>
    public static FuzzFinding? Run(
        FuzzTarget target, IReadOnlyList<(string Name, byte[] Data)> corpus, int iterations, int seed, TimeSpan budget, out int executed,
        Predicate<FuzzFinding>? known, out int knownHits, out int mutations, Func<byte[], byte[]>? prepare = null)
    {
        knownHits = 0;
        mutations = 0;
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(corpus);
        executed = 0;
        foreach ((string name, byte[] data) in corpus)
        {
            executed++;
            if (RunOne(target, data, $"corpus file {name}") is { } finding)
            {
                if (known?.Invoke(finding) == true)
                {
                    knownHits++;
                    continue;
                }

                return finding;
            }
        }

        if (corpus.Count == 0)
        {
            return null;
        }

        var mutator = new Mutator(seed);
        var pick = new Random(seed ^ 0x5eed);
        var stopwatch = Stopwatch.StartNew();
        for (int i = 0; i < iterations && stopwatch.Elapsed < budget; i++)
        {
            byte[] parent = corpus[pick.Next(corpus.Count)].Data;
            byte[] other = corpus[pick.Next(corpus.Count)].Data;
            byte[] input = mutator.Mutate(parent, other);
            if (prepare is not null)
            {
                input = prepare(input);
            }

            executed++;
            mutations++;
            if (RunOne(target, input, $"mutation {i} of seed {seed}") is { } finding)
            {
                if (known?.Invoke(finding) == true)
                {
                    knownHits++;
                    continue;
                }

                return finding;
            }
        }

        return null;
    }
}
