namespace VirtioVsock.Fuzz.Engine;

/// <summary>
/// Findings reported and not fixed yet. Their reproducers live in the corpus as <c>finding-*</c>; while a
/// finding is open, mutation runs with <c>--skip-known</c> pass over inputs that fail exactly its way, so
/// that a known problem does not eat a run's time budget. None is open: the reproducers of every fixed
/// finding (misaligned translated ring address, TX stall on a full RST ring, ring fields straddling a
/// region boundary) run with the rest of the corpus and must pass.
/// </summary>
public static class KnownFindings
{
    /// <summary>The open findings: target, reproducer file, the start of the exception message, and the report.</summary>
    public static IReadOnlyList<(string Target, string File, string MessageStart, string Report)> Open { get; } = [];

    /// <summary>
    /// Steers a mutated input away from open findings that mutation would hit too often (none today: the
    /// input is returned as is). Corpus files and AFL / libFuzzer runs are never changed.
    /// </summary>
    /// <param name="target">The target name.</param>
    /// <param name="input">A mutated input.</param>
    /// <returns>The input to run.</returns>
    public static byte[] AvoidOpen(string target, byte[] input)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(input);
        return input;
    }

    /// <summary>Whether <paramref name="finding"/> is one of the open findings.</summary>
    /// <param name="finding">The finding.</param>
    /// <returns>Whether it is known.</returns>
    public static bool IsKnown(FuzzFinding finding)
    {
        ArgumentNullException.ThrowIfNull(finding);
        return Open.Any(open => open.Target == finding.Target && finding.Exception.Message.Contains(open.MessageStart, StringComparison.Ordinal));
    }
}
