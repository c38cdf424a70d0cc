using System.Globalization;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>One run of one suite test: both sides' exit codes, times and output (from the guests' serial logs).</summary>
/// <param name="Repetition">1-based repetition.</param>
/// <param name="Id">The suite's test id.</param>
/// <param name="ServerExit">The server side's exit code (137: killed at the limit; -1: never ran).</param>
/// <param name="ClientExit">The client side's exit code (254: the gate said no; -1: never ran).</param>
/// <param name="ServerSeconds">Wall time on the server side (guest clock).</param>
/// <param name="ClientSeconds">Wall time on the client side (guest clock).</param>
/// <param name="ServerOutput">The server's output lines.</param>
/// <param name="ClientOutput">The client's output lines.</param>
public sealed record VsockSuiteTestRun(
    int Repetition, int Id, int ServerExit, int ClientExit, double ServerSeconds, double ClientSeconds,
    string ServerOutput, string ClientOutput)
{
    /// <summary>Both sides exited 0 and the server reported the test ok.</summary>
    public bool Passed => ServerExit == 0 && ClientExit == 0 && ServerOutput.Contains("...ok", StringComparison.Ordinal);

    /// <summary>A description for failure messages.</summary>
    public string Describe() => string.Create(
        CultureInfo.InvariantCulture,
        $"run {Repetition}: server exit {ServerExit} ({ServerSeconds:0.0} s), client exit {ClientExit} ({ClientSeconds:0.0} s)\n"
        + $"  server output:\n{Indent(ServerOutput)}\n  client output:\n{Indent(ClientOutput)}");

    private static string Indent(string text) =>
        string.Join('\n', text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => "    " + l));
}

/// <summary>
/// Everything one boot of a guest pair produced: every suite test's runs, vsock_perf both ways,
/// the pattern transfers, and the logs for failure messages.
/// </summary>
public sealed class VsockSuiteResult
{
    /// <summary>The kernel (sid or trixie).</summary>
    public required string Kernel { get; init; }

    /// <summary>The guest kernel release.</summary>
    public required string KernelVersion { get; init; }

    /// <summary>Repetitions asked for.</summary>
    public required int Repetitions { get; init; }

    /// <summary>Every test run, in order.</summary>
    public required IReadOnlyList<VsockSuiteTestRun> Runs { get; init; }

    /// <summary>The whole pair's wall time (daemon start to both guests done).</summary>
    public required TimeSpan WallTime { get; init; }

    /// <summary>Host time from guest start to the suite's last test.</summary>
    public required TimeSpan SuiteTime { get; init; }

    /// <summary>vsock_perf and pattern lines by command name (RESULT and the throughput lines).</summary>
    public required IReadOnlyDictionary<string, string> Transfers { get; init; }

    /// <summary>Counts of daemon log events (debug level): sibling-opened, sibling-closed, errors.</summary>
    public required IReadOnlyDictionary<string, int> DaemonLogCounts { get; init; }

    /// <summary>Why the pair did not finish cleanly (guest outcome, daemon exit), or null.</summary>
    public required string? Problem { get; init; }

    /// <summary>Guest logs, gate log and daemon log tail.</summary>
    public required string Diagnostics { get; init; }

    /// <summary>The runs of test <paramref name="id"/>.</summary>
    public IReadOnlyList<VsockSuiteTestRun> For(int id) => [.. Runs.Where(r => r.Id == id)];
}
