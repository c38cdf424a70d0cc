using System.Diagnostics;
using System.Globalization;
using System.Text;
using VhostUserVsock.Tests.Guest;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// Boots one guest against a running daemon and runs several scenarios in that boot: their guest
/// commands in order (each scenario's commands run while the others' wait), their host sides
/// concurrently (each waits for its turn: a guest LISTENING line or a guest connection).
/// Everything is bounded in time; QEMU is always killed at the end.
/// </summary>
public static class GuestRun
{
    /// <summary>How long QEMU may take to reach GUEST-READY.</summary>
    public static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(60);

    /// <summary>How long a scenario's host side may still run after its guest commands all ended.</summary>
    public static readonly TimeSpan GuestEndGrace = TimeSpan.FromSeconds(10);

    /// <summary>Runs <paramref name="scenarios"/> in one boot of <paramref name="image"/>.</summary>
    /// <param name="image">The guest.</param>
    /// <param name="daemon">The running daemon.</param>
    /// <param name="scenarios">The scenarios, in guest order.</param>
    /// <param name="timeout">QEMU's hard limit for the whole boot.</param>
    /// <param name="commandTimeout">The guest's per-command limit.</param>
    /// <param name="cancellationToken">Cancels the run (QEMU is killed).</param>
    public static async Task<GuestRunReport> RunAsync(
        GuestImage image,
        DaemonProcess daemon,
        IReadOnlyList<GuestScenario> scenarios,
        TimeSpan timeout,
        TimeSpan commandTimeout,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(daemon);
        ArgumentNullException.ThrowIfNull(scenarios);
        var clock = Stopwatch.StartNew();
        var contexts = scenarios.Select(s => new ScenarioContext(s, daemon)).ToList();
        var prepareFailures = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            foreach (var ctx in contexts)
            {
                try
                {
                    ctx.Scenario.Prepare?.Invoke(ctx);
                }
                catch (Exception e)
                {
                    prepareFailures[ctx.Scenario.Name] = "prepare failed: " + e;
                }
            }

            await using var guest = QemuGuest.Start(image, new QemuGuestOptions
            {
                VhostUserSocketPath = daemon.SocketPath,
                Commands = [.. scenarios.SelectMany(s => s.Commands)],
                Timeout = timeout,
                CommandTimeout = commandTimeout,
            });
            using var runCancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var killOnCancel = runCancel.Token.Register(guest.Kill);

            string? runFailure = null;
            GuestReadyInfo? ready = null;
            try
            {
                ready = await guest.Ready.WaitAsync(ReadyTimeout, cancellationToken).ConfigureAwait(false);
                if (!ready.VsockDevice || ready.Cid != (uint)daemon.GuestCid)
                    runFailure = $"the guest has no working vsock device: GUEST-READY cid={ready.Cid?.ToString(CultureInfo.InvariantCulture) ?? "none"} vsock-device={(ready.VsockDevice ? 1 : 0)}, expected cid={daemon.GuestCid}";
            }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException)
            {
                runFailure = $"no GUEST-READY within {ReadyTimeout.TotalSeconds:0} s: {e.Message}";
            }

            var outcomes = new Dictionary<string, ScenarioOutcome>(StringComparer.Ordinal);
            if (runFailure is null)
            {
                // a scenario's time starts with its turn: when the guest finished the command before its first
                var tasks = new List<Task<ScenarioOutcome>>();
                string? previous = null;
                foreach (var c in contexts)
                {
                    if (!prepareFailures.ContainsKey(c.Scenario.Name))
                        tasks.Add(RunScenarioAsync(c, guest, daemon, previous, runCancel.Token));
                    previous = c.Scenario.Commands.LastOrDefault()?.Name ?? previous;
                }
                foreach (var o in await Task.WhenAll(tasks).ConfigureAwait(false))
                    outcomes[o.Name] = o;
                // the guest still powers off by itself after its last command
                await Task.WhenAny(guest.Completion, Task.Delay(TimeSpan.FromSeconds(30), cancellationToken)).ConfigureAwait(false);
                if (!guest.Completion.IsCompleted)
                    runFailure = "no GUEST-DONE within 30 s after the last scenario ended";
                else if (guest.Completion.Result != GuestOutcome.Done)
                    runFailure = $"the guest run ended with {guest.Completion.Result}, not GUEST-DONE";
            }
            if (daemon.HasExited)
                runFailure = (runFailure is null ? "" : runFailure + "; ") + $"the daemon exited during the run (exit code {daemon.ExitCode})";

            foreach (var ctx in contexts)
            {
                var name = ctx.Scenario.Name;
                if (outcomes.ContainsKey(name))
                    continue;
                var why = prepareFailures.TryGetValue(name, out var p) ? p : "not run: " + runFailure;
                outcomes[name] = new ScenarioOutcome(name, why + "\n" + Context(ctx, guest, daemon), ctx.LogText, ctx.Metrics, TimeSpan.Zero);
            }

            var serial = guest.SerialLog;
            return new GuestRunReport
            {
                Image = image,
                Ready = ready,
                RunFailure = runFailure is null ? null : runFailure + "\n" + guest.Describe() + "\n" + DaemonTail(daemon, 200),
                BootTime = guest.BootTime,
                Elapsed = clock.Elapsed,
                Outcome = guest.Completion.IsCompleted ? guest.Completion.Result : GuestOutcome.Killed,
                Scenarios = contexts.ToDictionary(c => c.Scenario.Name, c => outcomes[c.Scenario.Name], StringComparer.Ordinal),
                SerialLog = serial,
                DaemonLog = daemon.Log,
                KernelWarnings = [.. serial.Split('\n').Where(l => l.StartsWith("KMSG ", StringComparison.Ordinal))],
            };
        }
        finally
        {
            foreach (var ctx in contexts)
                ctx.Dispose();
        }
    }

    /// <summary>The last <paramref name="lines"/> lines of the daemon's log, headed.</summary>
    public static string DaemonTail(DaemonProcess daemon, int lines)
    {
        ArgumentNullException.ThrowIfNull(daemon);
        var all = daemon.Log.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var tail = all.Skip(Math.Max(0, all.Length - lines));
        var state = daemon.HasExited ? $"exited with {daemon.ExitCode}" : "running";
        return $"---- daemon log ({state}; last {Math.Min(lines, all.Length)} of {all.Length} lines) ----\n" + string.Join('\n', tail) + "\n--------------------";
    }

    private static async Task<ScenarioOutcome> RunScenarioAsync(ScenarioContext ctx, QemuGuest guest, DaemonProcess daemon, string? previousCommand, CancellationToken runToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(runToken);
        ctx.Begin(guest, cts.Token);
        if (previousCommand is null)
        {
            cts.CancelAfter(ctx.Scenario.Timeout);
        }
        else
        {
            _ = Task.Run(async () =>
            {
                try
                {
                    await guest.WaitForResultAsync(previousCommand, Timeout.InfiniteTimeSpan, cts.Token).ConfigureAwait(false);
                    ctx.Log($"its turn in the guest ('{previousCommand}' ended)");
                    cts.CancelAfter(ctx.Scenario.Timeout);
                }
                catch (Exception e) when (e is OperationCanceledException or InvalidOperationException or ObjectDisposedException)
                {
                    // QEMU ended: the scenario's own waits fail
                }
            });
        }
        string? guestEnded = null;
        // once all of the scenario's guest commands have ended, the host side gets a grace period
        _ = Task.Run(async () =>
        {
            try
            {
                var last = new List<string>();
                foreach (var c in ctx.Scenario.Commands)
                    last.Add((await guest.WaitForResultAsync(c.Name, Timeout.InfiniteTimeSpan, cts.Token).ConfigureAwait(false)).ToString());
                await Task.Delay(GuestEndGrace, cts.Token).ConfigureAwait(false);
                guestEnded = string.Join("; ", last);
                await cts.CancelAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or InvalidOperationException or ObjectDisposedException)
            {
            }
        });
        string? failure = null;
        try
        {
            // off the caller's context; a scenario that blocks must not hold up the others
            await Task.Run(() => ctx.Scenario.Host(ctx), cts.Token).WaitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (guestEnded is not null && !runToken.IsCancellationRequested)
        {
            failure = $"the host side was still waiting {GuestEndGrace.TotalSeconds:0} s after the guest side ended ({guestEnded})";
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested && !runToken.IsCancellationRequested)
        {
            failure = $"timed out: not done {ctx.Scenario.Timeout.TotalSeconds:0} s after its turn in the guest began";
        }
        catch (Exception e)
        {
            failure = e is ScenarioFailedException ? e.Message : e.ToString();
        }
        if (failure is not null)
        {
            ctx.Log("FAILED: " + failure.Split('\n')[0]);
            failure += "\n" + Context(ctx, guest, daemon);
        }
        return new ScenarioOutcome(ctx.Scenario.Name, failure, ctx.LogText, ctx.Metrics, ctx.Elapsed);
    }

    private static string Context(ScenarioContext ctx, QemuGuest guest, DaemonProcess daemon)
    {
        var names = ctx.Scenario.Commands.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        var sb = new StringBuilder();
        sb.Append("---- host side of ").Append(ctx.Scenario.Name).Append(" ----\n").Append(ctx.LogText);
        sb.Append("---- guest lines of ").Append(ctx.Scenario.Name).Append(" (and warnings) ----\n");
        foreach (var line in guest.SerialLog.Split('\n'))
        {
            var words = line.Split(' ', 3);
            bool mine = words.Length >= 2 && (words[0] == "OUT" || words[0] == "RESULT") && names.Contains(words[1]);
            if (mine || line.StartsWith("GUEST-", StringComparison.Ordinal) || line.StartsWith("KMSG ", StringComparison.Ordinal))
                sb.Append(line).Append('\n');
        }
        sb.Append(DaemonTail(daemon, 60));
        return sb.ToString();
    }
}
