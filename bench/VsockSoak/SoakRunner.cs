using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace VsockSoak;

/// <summary>
/// Runs the soak: a warm-up, then one worker per connection slot starting connections back to back
/// (directions alternating, close modes in turn) for the set duration, a frontend reconnect at the set
/// interval, a sampler keeping the peak figures, and a settle phase (connections drained, GC) before the end
/// figures. Owns the workers and timers; it must never wait without a deadline.
/// </summary>
internal static class SoakRunner
{
    private static readonly TimeSpan SettleDeadline = TimeSpan.FromSeconds(60);

    public static async Task<SoakReport> RunAsync(SoakOptions options, TextWriter log)
    {
        var trace = new TraceCapture();
        Trace.Listeners.Add(trace);
        await using var rig = new SoakRig(options);
        var live = new ConcurrentDictionary<long, LiveConnection>();
        Memory<byte>[][] buffers = Enumerable.Range(0, options.Connections)
            .Select(_ => Enumerable.Range(0, 4).Select(_ => (Memory<byte>)new byte[64 * 1024]).ToArray()).ToArray();
        long nextId = 0;

        // Warm-up (not counted): JIT, the socket engine's epoll threads and pools exist before the start figures.
        var warmTally = new SoakTally();
        var warm = new ConnectionScenario(rig, warmTally, options, live);
        // Every direction and close mode once, then again around a reconnect (its paths load code and assemblies too).
        int warmers = Math.Min(options.Connections, CloseModes.Count * 2);
        for (int round = 0; round < 2; round++)
        {
            Task[] warming = Enumerable.Range(0, warmers)
                .Select(i => warm.RunAsync(i, Interlocked.Increment(ref nextId), i % 2 == 0, (CloseMode)(i / 2 % CloseModes.Count), new Random(i), buffers[i]))
                .ToArray();
            if (round == 1)
            {
                await Task.Delay(200).ConfigureAwait(false);
                rig.Reconnect();
                foreach (LiveConnection connection in live.Values)
                {
                    connection.OnReconnect(options.ReconnectGrace);
                }
            }

            await Task.WhenAll(warming).ConfigureAwait(false);
        }

        // Assemblies the socket stack loads on its first error paths keep an fd on their files: load them now.
        // A socket receive that fails at once captures a stack trace with source lines; the first one loads the
        // symbol reader (System.Reflection.Metadata and friends, kept mapped) and opens our pdb, whenever it
        // happens. Do it here, before the start figures, so that one-off load is not taken for a leak.
        _ = typeof(System.Net.Dns).Assembly.GetName();
        _ = new StackTrace(fNeedFileInfo: true).ToString();
        if (warmTally.Stuck + warmTally.OrderlyFailures + warmTally.Corrupted + warmTally.ConnectFailures > 0)
        {
            log.WriteLine("warm-up failures: " + string.Join(" | ", warmTally.FailureNotes));
        }

        await WaitForAsync(() => rig.Device.ConnectionCount == 0 && rig.Guest.SocketCount == 0, SettleDeadline).ConfigureAwait(false);
        Settle();
        ResourceSnapshot start = ResourceSnapshot.Take(rig.Device);
        FdInventory startFds = FdInventory.Take();
        ResourceSnapshot peak = start;
        log.WriteLine($"start: {start}");

        var tally = new SoakTally();
        var scenario = new ConnectionScenario(rig, tally, options, live);
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource(options.Duration);
        using var samplerStop = new CancellationTokenSource();
        int reconnects = 0;

        async Task Sampler()
        {
            TimeSpan nextReport = options.ReportEvery;
            while (!samplerStop.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), samplerStop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                ResourceSnapshot now = ResourceSnapshot.Take(rig.Device);
                peak = peak.Max(now);
                if (clock.Elapsed >= nextReport)
                {
                    nextReport += options.ReportEvery;
                    log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"[{clock.Elapsed.TotalSeconds,6:F0} s] {now}; started {tally.Started}, orderly ok {tally.OrderlyVerified}, failed {tally.OrderlyFailures}, stuck {tally.Stuck}, corrupted {tally.Corrupted}, reconnects {reconnects}"));
                }
            }
        }

        async Task Reconnector()
        {
            if (options.ReconnectEvery <= TimeSpan.Zero)
            {
                return;
            }

            while (true)
            {
                try
                {
                    await Task.Delay(options.ReconnectEvery, stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                LiveConnection[] hit = live.Values.ToArray();
                int before = rig.Device.ConnectionCount;
                var watch = Stopwatch.StartNew();
                rig.Reconnect();
                foreach (LiveConnection connection in live.Values.Concat(hit).Distinct())
                {
                    connection.OnReconnect(options.ReconnectGrace);
                    tally.OnOverlapped();
                }

                reconnects++;
                log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"[{clock.Elapsed.TotalSeconds,6:F0} s] frontend reconnect #{reconnects} in {watch.Elapsed.TotalMilliseconds:F0} ms; device connections {before} -> {rig.Device.ConnectionCount}"));
            }
        }

        async Task Worker(int index)
        {
            var random = new Random(HashCode.Combine(options.Seed, index));
            for (long iteration = 0; !stop.IsCancellationRequested; iteration++)
            {
                bool guestToHost = ((index + iteration) & 1) == 0;
                var mode = (CloseMode)((index + (iteration / 2)) % CloseModes.Count);
                await scenario.RunAsync(index, Interlocked.Increment(ref nextId), guestToHost, mode, random, buffers[index]).ConfigureAwait(false);
            }
        }

        Task sampler = Task.Run(Sampler);
        Task reconnector = Task.Run(Reconnector);
        await Task.WhenAll(Enumerable.Range(0, options.Connections).Select(i => Task.Run(() => Worker(i)))).ConfigureAwait(false);
        await reconnector.ConfigureAwait(false);
        TimeSpan elapsed = clock.Elapsed;
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{elapsed.TotalSeconds,6:F0} s] workers done; settling"));

        await WaitForAsync(() => rig.Device.ConnectionCount == start.Connections && rig.Guest.SocketCount == 0, SettleDeadline).ConfigureAwait(false);
        Settle();
        await WaitForAsync(() => ResourceSnapshot.Take(rig.Device).OpenFds == start.OpenFds, TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        Settle();
        ResourceSnapshot end = ResourceSnapshot.Take(rig.Device);
        await samplerStop.CancelAsync().ConfigureAwait(false);
        await sampler.ConfigureAwait(false);
        peak = peak.Max(end);
        IReadOnlyList<string> newFds = FdInventory.Take().DescribeNewSince(startFds);
        return new SoakReport
        {
            Start = start,
            Peak = peak,
            End = end,
            Tally = tally,
            Elapsed = elapsed,
            Reconnects = reconnects,
            GuestSocketsLeft = rig.Guest.SocketCount,
            OutstandingTxChains = rig.Guest.OutstandingTxChains,
            DeviceFaults = rig.Device.Metrics.DeviceFaults,
            NewFds = newFds,
            EndpointFaults = rig.Device.Metrics.EndpointFaults,
            TraceMessages = trace.Count,
            TraceSamples = trace.Messages,
        };
    }

    private static void Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    private static async Task WaitForAsync(Func<bool> condition, TimeSpan deadline)
    {
        var watch = Stopwatch.StartNew();
        while (!condition() && watch.Elapsed < deadline)
        {
            await Task.Delay(50).ConfigureAwait(false);
        }
    }
}
