using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using VhostUserVsock.Tests.Guest;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// Boots two guests of one kernel (CID 3: the suite's server, CID 4: its client) against one daemon
/// with both VMs in one sibling group, and runs the kernel's vsock suite between them: every
/// runnable test alone, <see cref="VsockSuiteCatalog.Repetitions"/> times, each side under
/// <see cref="VsockSuiteCatalog.PerTestLimit"/>; then vsock_perf both ways and a 64 MiB pattern
/// transfer both ways (vsocktest send / recv-server: count and every byte checked). The suite's TCP
/// control channel goes through QEMU user networking: the server guest's port 1234 is forwarded to
/// a free port on the host's 127.0.0.1, which the client guest reaches as 10.0.2.2. A
/// <see cref="GuestGateServer"/> starts each client step only once the server step listens. One run
/// per kernel per test process (<see cref="GetAsync"/>), shared by every test that checks it.
/// </summary>
public static class VsockSuitePair
{
    /// <summary>The server guest's CID.</summary>
    public const ulong ServerCid = 3;

    /// <summary>The client guest's CID.</summary>
    public const ulong ClientCid = 4;

    /// <summary>Bytes of each pattern transfer.</summary>
    public const long PatternBytes = 64L << 20;

    /// <summary>vsock_perf's byte count each way.</summary>
    public const string PerfBytes = "64M";

    private const int ControlPortInGuest = 1234;
    private static readonly ConcurrentDictionary<string, Lazy<Task<VsockSuiteResult>>> Runs = new(StringComparer.Ordinal);

    /// <summary>The (one, shared) run for <paramref name="kernel"/>; the image must be there.</summary>
    public static Task<VsockSuiteResult> GetAsync(string kernel, GuestImage image) =>
        Runs.GetOrAdd(kernel, k => new Lazy<Task<VsockSuiteResult>>(() => RunAsync(k, image, VsockSuiteCatalog.Repetitions))).Value;

    /// <summary>Runs the pair once (see the type).</summary>
    public static async Task<VsockSuiteResult> RunAsync(string kernel, GuestImage image, int repetitions)
    {
        var tests = VsockSuiteCatalog.RunnableTests(kernel) ?? throw new InvalidOperationException($"no test list for {kernel}");
        var limit = VsockSuiteCatalog.PerTestLimit;
        var ids = string.Join(' ', tests.Select(t => t.Id.ToString(CultureInfo.InvariantCulture)));
        var lim = ((int)limit.TotalSeconds).ToString(CultureInfo.InvariantCulture);
        // a whole-run limit: boot, every run at a generous 60 s each (most take 1-5 s), transfers
        var total = TimeSpan.FromSeconds(600 + repetitions * tests.Count * 60.0);
        var clock = Stopwatch.StartNew();
        // debug: the per-connection events of the device and the sibling relay (counted below)
        await using var daemon = await DaemonProcess.StartSiblingsAsync([ServerCid, ClientCid], "suite", logLevel: "debug").ConfigureAwait(false);
        QemuGuest? server = null, client = null;
        await using var gate = new GuestGateServer((key, ct) => DecideAsync(key, server, client, limit, ct));
        var hostPort = GuestGateServer.FreeLoopbackPort();
        var hp = hostPort.ToString(CultureInfo.InvariantCulture);
        var s = ServerCid.ToString(CultureInfo.InvariantCulture);
        var c = ClientCid.ToString(CultureInfo.InvariantCulture);
        var n = PatternBytes.ToString(CultureInfo.InvariantCulture);
        const string T = "timeout -s KILL 300 ";
        GuestCommand[] serverCommands =
        [
            new("suite", $"vsock-suite server {repetitions} {lim} {c} {ControlPortInGuest} {ids}"),
            new("perf-rx-a", $"echo START; {T}vsock_perf --port 7001"),
            new("perf-tx-a", $"gate line perf-rx-b START && {T}perf-send {c} 7002 {PerfBytes}"),
            new("pat-rx-a", $"{T}vsocktest -T 280 recv-server 7003 {n}"),
            new("pat-tx-a", $"gate line pat-rx-b LISTENING && {T}vsocktest -T 280 send {c} 7004 {n}"),
        ];
        GuestCommand[] clientCommands =
        [
            new("suite", $"vsock-suite client {repetitions} {lim} {s} {hp} {ids}"),
            new("perf-tx-b", $"gate line perf-rx-a START && {T}perf-send {s} 7001 {PerfBytes}"),
            new("perf-rx-b", $"echo START; {T}vsock_perf --port 7002"),
            new("pat-tx-b", $"gate line pat-rx-a LISTENING && {T}vsocktest -T 280 send {s} 7003 {n}"),
            new("pat-rx-b", $"{T}vsocktest -T 280 recv-server 7004 {n}"),
        ];
        var common = new QemuGuestOptions
        {
            Timeout = total,
            CommandTimeout = total,
            ExtraKernelArguments = [$"vsocktest.gate={gate.Port}"],
        };
        server = QemuGuest.Start(image, common with
        {
            VhostUserSocketPath = daemon.VmSocketPaths[ServerCid],
            Commands = serverCommands,
            ExtraQemuArguments = ["-netdev", $"user,id=net0,hostfwd=tcp:127.0.0.1:{hp}-:{ControlPortInGuest}", "-device", "virtio-net-pci,netdev=net0,romfile="],
        });
        await using var serverGuard = server.ConfigureAwait(false);
        client = QemuGuest.Start(image, common with
        {
            VhostUserSocketPath = daemon.VmSocketPaths[ClientCid],
            Commands = clientCommands,
            ExtraQemuArguments = ["-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0,romfile="],
        });
        await using var clientGuard = client.ConfigureAwait(false);

        var outcomes = await Task.WhenAll(server.Completion, client.Completion).ConfigureAwait(false);
        var suiteDone = clock.Elapsed;
        string? problem = null;
        if (outcomes.Any(o => o != GuestOutcome.Done))
            problem = $"guest outcomes: server {outcomes[0]}, client {outcomes[1]} (expected Done)";
        if (daemon.HasExited)
            problem = (problem is null ? "" : problem + "; ") + $"the daemon exited with {daemon.ExitCode}";

        var serverSteps = ParseSuite(server.SerialLog);
        var clientSteps = ParseSuite(client.SerialLog);
        var runs = new List<VsockSuiteTestRun>();
        foreach (var key in serverSteps.Keys.Union(clientSteps.Keys).Order())
        {
            serverSteps.TryGetValue(key, out var sv);
            clientSteps.TryGetValue(key, out var cl);
            runs.Add(new VsockSuiteTestRun(
                key.Rep, key.Id, sv?.Exit ?? -1, cl?.Exit ?? -1, sv?.Seconds ?? 0, cl?.Seconds ?? 0,
                sv?.Output.ToString() ?? "", cl?.Output.ToString() ?? ""));
        }
        var transfers = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var g in new[] { server, client })
        {
            foreach (var r in g.Results.Where(r => r.Name != "suite"))
                transfers[r.Name] = r.ToString();
            foreach (var line in g.SerialLog.Split('\n'))
            {
                if (line.StartsWith("OUT perf-", StringComparison.Ordinal) && (line.Contains("performance:", StringComparison.Ordinal) || line.Contains("total bytes", StringComparison.Ordinal)))
                {
                    var parts = line.Split(' ', 3);
                    transfers[parts[1] + (line.Contains("performance:", StringComparison.Ordinal) ? ".perf" : ".bytes")] = parts[2];
                }
            }
        }
        var daemonLog = daemon.Log;
        var logCounts = new Dictionary<string, int>(StringComparer.Ordinal)
        {
            ["sibling-opened"] = CountLines(daemonLog, "vsock: sibling connection ", ") opened by CID "),
            ["sibling-closed"] = CountLines(daemonLog, "vsock: sibling connection ", " closed in state "),
            ["errors"] = CountLines(daemonLog, "fail: ", "") + CountLines(daemonLog, "crit: ", ""),
        };
        var diagnostics = new StringBuilder()
            .Append("---- server guest (CID 3) ----\n").Append(Tail(server.Describe(), 400))
            .Append("\n---- client guest (CID 4) ----\n").Append(Tail(client.Describe(), 400))
            .Append("\n---- gate ----\n").Append(string.Join('\n', gate.Log.TakeLast(50)))
            .Append("\n---- daemon ----\n").Append(Tail(daemon.Describe(), 200));
        return new VsockSuiteResult
        {
            Kernel = kernel,
            KernelVersion = image.KernelVersion ?? "?",
            Repetitions = repetitions,
            Runs = runs,
            WallTime = clock.Elapsed,
            SuiteTime = suiteDone,
            Transfers = transfers,
            DaemonLogCounts = logCounts,
            Problem = problem,
            Diagnostics = diagnostics.ToString(),
        };
    }

    private static async Task<bool> DecideAsync(string key, QemuGuest? server, QemuGuest? client, TimeSpan limit, CancellationToken ct)
    {
        if (server is null || client is null)
            return false;
        var wait = limit * 2 + TimeSpan.FromSeconds(120);
        var words = key.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        try
        {
            if (words is ["suite", var rep, var id])
            {
                // the server's BEGIN for this run, then its control socket listening (not its END first)
                var begun = false;
                var line = await server.WaitForLineAsync(
                    l =>
                    {
                        if (l == $"OUT suite BEGIN {rep} {id}")
                            begun = true;
                        else if (begun && (l.StartsWith("OUT suite Control socket listening", StringComparison.Ordinal) || l.StartsWith($"OUT suite END {rep} {id} ", StringComparison.Ordinal)))
                            return true;
                        return false;
                    },
                    wait,
                    ct).ConfigureAwait(false);
                return line.Contains("listening", StringComparison.Ordinal);
            }
            if (words is ["line", var name, var prefix])
            {
                var guest = name.EndsWith("-a", StringComparison.Ordinal) ? server : client;
                await guest.WaitForOutputAsync(name, prefix, wait, ct).ConfigureAwait(false);
                return true;
            }
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException or OperationCanceledException)
        {
        }
        return false;
    }

    private sealed class Step
    {
        public int Exit { get; set; } = -1;
        public double Seconds { get; set; }
        public StringBuilder Output { get; } = new();
    }

    private static SortedDictionary<(int Rep, int Id), Step> ParseSuite(string serial)
    {
        var steps = new SortedDictionary<(int, int), Step>();
        Step? current = null;
        foreach (var line in serial.Split('\n'))
        {
            if (!line.StartsWith("OUT suite ", StringComparison.Ordinal))
                continue;
            var text = line["OUT suite ".Length..];
            var w = text.Split(' ');
            if (w is ["BEGIN", var r, var i] && TryInt(r, out var rep) && TryInt(i, out var id))
            {
                current = new Step();
                steps[(rep, id)] = current;
            }
            else if (w is ["END", var r2, var i2, var rc, var cs] && TryInt(r2, out var rep2) && TryInt(i2, out var id2) && TryInt(rc, out var exit))
            {
                if (!steps.TryGetValue((rep2, id2), out var step))
                    steps[(rep2, id2)] = step = new Step();
                step.Exit = exit;
                step.Seconds = TryInt(cs, out var centi) ? centi / 100.0 : 0;
                current = null;
            }
            else
            {
                current?.Output.Append(text).Append('\n');
            }
        }
        return steps;
    }

    private static int CountLines(string log, string first, string second)
    {
        int count = 0;
        foreach (var line in log.AsSpan().EnumerateLines())
        {
            int at = line.IndexOf(first, StringComparison.Ordinal);
            if (at >= 0 && line[(at + first.Length)..].IndexOf(second, StringComparison.Ordinal) >= 0)
                count++;
        }
        return count;
    }

    private static bool TryInt(string s, out int v) =>
        int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v);

    private static string Tail(string text, int lines)
    {
        var all = text.Split('\n');
        return all.Length <= lines ? text : $"[... {all.Length - lines} lines]\n" + string.Join('\n', all[^lines..]);
    }
}
