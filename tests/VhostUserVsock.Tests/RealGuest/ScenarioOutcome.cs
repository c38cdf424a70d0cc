namespace VhostUserVsock.Tests.RealGuest;

/// <summary>How one scenario of a <see cref="GuestRun"/> ended.</summary>
/// <param name="Name">The scenario.</param>
/// <param name="Failure">Null when it passed; else what went wrong (with the relevant serial lines and daemon log).</param>
/// <param name="Log">What the host side recorded.</param>
/// <param name="Metrics">Numbers it measured (e.g. host/guest MiB/s).</param>
/// <param name="Elapsed">Host-side time from GUEST-READY to the end of the scenario.</param>
public sealed record ScenarioOutcome(string Name, string? Failure, string Log, IReadOnlyDictionary<string, double> Metrics, TimeSpan Elapsed)
{
    /// <summary>True when it passed.</summary>
    public bool Passed => Failure is null;
}
