using System.Globalization;
using System.Text;
using System.Text.Json;

namespace VsockSoak;

/// <summary>
/// The soak's result: the start, peak and end figures, the tally, and the end conditions with their
/// verdicts. Owns values; it must never pass a run that broke one of the conditions.
/// </summary>
internal sealed class SoakReport
{
    /// <summary>RSS may end at most this far above its start.</summary>
    public const long RssAllowance = 64L * 1024 * 1024;

    public required ResourceSnapshot Start { get; init; }

    public required ResourceSnapshot Peak { get; init; }

    public required ResourceSnapshot End { get; init; }

    public required SoakTally Tally { get; init; }

    public required TimeSpan Elapsed { get; init; }

    public required int Reconnects { get; init; }

    public required int GuestSocketsLeft { get; init; }

    public required int OutstandingTxChains { get; init; }

    public required long DeviceFaults { get; init; }

    /// <summary>The fds open at the end that were not open at the start (what a leak is).</summary>
    public required IReadOnlyList<string> NewFds { get; init; }

    /// <summary>Exceptions from host endpoints that the device contained (each reset its connection).</summary>
    public required long EndpointFaults { get; init; }

    /// <summary>Error and warning messages the device wrote to Trace (contained faults).</summary>
    public required int TraceMessages { get; init; }

    /// <summary>The first of those messages.</summary>
    public required IReadOnlyCollection<string> TraceSamples { get; init; }

    /// <summary>Each end condition and whether it held.</summary>
    public IReadOnlyList<(string Condition, bool Held)> Conditions =>
    [
        ($"fds back to start ({Start.OpenFds} -> {End.OpenFds})", End.OpenFds == Start.OpenFds),
        ($"connections back to start ({Start.Connections} -> {End.Connections})", End.Connections == Start.Connections),
        ($"buffered bytes back to start ({Start.BufferedBytes} -> {End.BufferedBytes})", End.BufferedBytes == Start.BufferedBytes),
        (string.Create(CultureInfo.InvariantCulture, $"RSS within 64 MiB of start ({(End.RssBytes - Start.RssBytes) / (1024.0 * 1024):+0.0;-0.0} MiB)"), End.RssBytes - Start.RssBytes <= RssAllowance),
        ($"no stuck connection ({Tally.Stuck})", Tally.Stuck == 0),
        ($"no lost byte on orderly connections ({Tally.OrderlyFailures} failed, {Tally.OrderlyVerified} verified)", Tally.OrderlyFailures == 0 && Tally.OrderlyVerified > 0),
        ($"no corrupted byte ({Tally.Corrupted})", Tally.Corrupted == 0),
        ($"no failed connect outside reconnects ({Tally.ConnectFailures})", Tally.ConnectFailures == 0),
        ($"no guest socket left ({GuestSocketsLeft})", GuestSocketsLeft == 0),
        ($"no device fault ({DeviceFaults})", DeviceFaults == 0),
    ];

    public bool Passed => Conditions.All(c => c.Held);

    /// <summary>The human-readable summary.</summary>
    public string ToText()
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"elapsed {Elapsed.TotalSeconds:F0} s, reconnects {Reconnects}");
        text.AppendLine(CultureInfo.InvariantCulture, $"start: {Start}");
        text.AppendLine(CultureInfo.InvariantCulture, $"peak:  {Peak}");
        text.AppendLine(CultureInfo.InvariantCulture, $"end:   {End}");
        string byMode = string.Join(", ", Enum.GetValues<CloseMode>().Select(m => $"{m} {Tally.CompletedIn(m)}"));
        text.AppendLine(CultureInfo.InvariantCulture,
            $"connections: started {Tally.Started} (g->h {Tally.GuestToHost}, h->g {Tally.HostToGuest}), completed {Tally.Completed}; by mode: {byMode}");
        text.AppendLine(CultureInfo.InvariantCulture,
            $"orderly verified {Tally.OrderlyVerified}, abortive ended cleanly {Tally.AbortiveEndedCleanly}, bytes checked g->h {Tally.BytesGuestToHost}, h->g {Tally.BytesHostToGuest}");
        text.AppendLine(CultureInfo.InvariantCulture,
            $"reconnect: connections hit {Tally.OverlappedReconnect}, host side ended by the reset {Tally.HostClosedByReset}, given up after the grace {Tally.OrphanedByReconnect}, connects refused during a reconnect {Tally.ExcusedConnectFailures}");
        foreach ((string condition, bool held) in Conditions)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  [{(held ? "ok" : "FAIL")}] {condition}");
        }

        foreach (string note in Tally.FailureNotes)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  failure: {note}");
        }

        text.AppendLine(CultureInfo.InvariantCulture, $"device: endpoint faults {EndpointFaults}, trace messages {TraceMessages}");
        foreach (string message in TraceSamples)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  trace: {message}");
        }

        foreach (string fd in NewFds)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  new fd since start: {fd}");
        }

        text.Append(Passed ? "SOAK PASSED" : "SOAK FAILED");
        return text.ToString();
    }

    /// <summary>One JSON object, for the CI test.</summary>
    public string ToJson() => JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["passed"] = Passed,
        ["elapsedSeconds"] = Math.Round(Elapsed.TotalSeconds, 1),
        ["reconnects"] = Reconnects,
        ["start"] = Figures(Start),
        ["peak"] = Figures(Peak),
        ["end"] = Figures(End),
        ["started"] = Tally.Started,
        ["completed"] = Tally.Completed,
        ["orderlyVerified"] = Tally.OrderlyVerified,
        ["orderlyFailures"] = Tally.OrderlyFailures,
        ["corrupted"] = Tally.Corrupted,
        ["stuck"] = Tally.Stuck,
        ["connectFailures"] = Tally.ConnectFailures,
        ["overlappedReconnect"] = Tally.OverlappedReconnect,
        ["guestSocketsLeft"] = GuestSocketsLeft,
        ["outstandingTxChains"] = OutstandingTxChains,
        ["deviceFaults"] = DeviceFaults,
        ["failedConditions"] = Conditions.Where(c => !c.Held).Select(c => c.Condition).ToArray(),
        ["failureNotes"] = Tally.FailureNotes.ToArray(),
        ["newFds"] = NewFds.ToArray(),
        ["endpointFaults"] = EndpointFaults,
        ["traceMessages"] = TraceMessages,
        ["traceSamples"] = TraceSamples.ToArray(),
    });

    private static Dictionary<string, long> Figures(ResourceSnapshot s) => new()
    {
        ["rssBytes"] = s.RssBytes,
        ["openFds"] = s.OpenFds,
        ["connections"] = s.Connections,
        ["bufferedBytes"] = s.BufferedBytes,
    };
}
