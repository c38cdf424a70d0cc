using System.Diagnostics;
using VsockLoad.Frontend;
using VsockLoad.Report;
using VsockLoad.Scenarios;

namespace VsockLoad;

/// <summary>
/// Runs one mode end to end: starts the device on the backend, runs the scenario loop on the calling
/// thread, then measures the socketpair limit with the same sizes, and builds the result.
/// </summary>
internal static class LoadRunner
{
    /// <summary>Runs <paramref name="options"/> against <paramref name="backend"/>.</summary>
    /// <param name="options">The run (paths taken from the backend).</param>
    /// <param name="backend">The backend.</param>
    /// <param name="errors">Where violation details go.</param>
    /// <returns>The result.</returns>
    public static RunResult Run(LoadOptions options, BackendProcess backend, TextWriter errors)
    {
        options = options with { SocketPath = backend.SocketPath, UdsPath = backend.UdsPath };
        var checks = new Checks();
        using DeviceSession device = DeviceSession.Start(options.SocketPath, options.EventIdx, TimeSpan.FromSeconds(30));
        using Scenario scenario = options.Mode switch
        {
            LoadMode.GuestToHost => new GuestToHostStream(options, checks, backend.CpuTicks),
            LoadMode.HostToGuest => new HostToGuestStream(options, checks, backend.CpuTicks),
            LoadMode.RequestResponse => new RequestResponse(options, checks, backend.CpuTicks),
            _ => new Connections(options, checks, backend.CpuTicks),
        };
        scenario.Run(device, options.Timeout);
        foreach (string message in checks.Messages)
        {
            errors.WriteLine("violation: " + message);
        }

        bool finished = scenario.EndTicks != 0;
        double seconds = finished ? (scenario.EndTicks - scenario.StartTicks) / (double)Stopwatch.Frequency : 0;
        double? cpu = scenario.CpuStart >= 0 && scenario.CpuEnd >= 0 ? (scenario.CpuEnd - scenario.CpuStart) * BackendProcess.SecondsPerTick : null;
        double? kernelCpu = scenario.KernelCpuStart >= 0 && scenario.KernelCpuEnd >= 0 ? (scenario.KernelCpuEnd - scenario.KernelCpuStart) * BackendProcess.SecondsPerTick : null;
        double value = 0;
        double? p99 = null;
        double? limit = null;
        double? limitP99 = null;
        double? limitCold = null;
        double? limitBackendKernel = null;
        string unit;
        long streamBytes = 0;
        switch (options.Mode)
        {
            case LoadMode.GuestToHost or LoadMode.HostToGuest:
                unit = "MiB_per_s";
                streamBytes = scenario.MeasuredUnits;
                value = finished ? scenario.MeasuredUnits / seconds / (1 << 20) : 0;
                if (options.MeasureLimit)
                {
                    (double rate, double cold, double readerKernel, double writerKernel) = SocketPairLimit.Stream(Math.Max(scenario.MeasuredUnits, 1 << 20), options.WriteSize, Scenario.ColdWindowBytes);
                    limit = rate;
                    limitCold = cold > 0 ? cold : null;
                    // The backend reads host writes in host->guest and writes them in guest->host: its end's kernel floor.
                    limitBackendKernel = options.Mode == LoadMode.HostToGuest ? readerKernel : writerKernel;
                }

                break;
            case LoadMode.RequestResponse:
                unit = "p50_us";
                if (finished && scenario is RequestResponse rr)
                {
                    long[] times = rr.Latencies.ToArray();
                    (value, double p99Value) = Percentiles(times);
                    p99 = p99Value;
                }

                if (options.MeasureLimit)
                {
                    (double p50, double p99Limit) = Percentiles(SocketPairLimit.RoundTrips(Math.Max(options.Count, 100)));
                    limit = p50;
                    limitP99 = p99Limit;
                }

                break;
            default:
                unit = "conn_per_s";
                value = finished ? scenario.MeasuredUnits / seconds : 0;
                limit = options.MeasureLimit ? SocketPairLimit.Connections(Math.Max(options.Count, 100), options.WriteSize) : null;
                break;
        }

        return new RunResult
        {
            Mode = options.Mode switch
            {
                LoadMode.GuestToHost => "g2h",
                LoadMode.HostToGuest => "h2g",
                LoadMode.RequestResponse => "rr",
                _ => "conn",
            },
            WriteSize = options.Mode == LoadMode.RequestResponse ? 1 : options.WriteSize,
            EventIdx = options.EventIdx,
            Measured = scenario.MeasuredUnits,
            Seconds = seconds,
            Value = value,
            Unit = unit,
            P99 = p99,
            Limit = limit,
            LimitP99 = limitP99,
            BackendCpuSeconds = cpu,
            BackendKernelCpuSeconds = kernelCpu,
            StreamBytes = streamBytes,
            DriverCpuSeconds = (scenario.DriverCpuEnd - scenario.DriverCpuStart).TotalSeconds,
            IdleTimeouts = scenario.IdleTimeouts,
            ColdRate = scenario.ColdWindowEndTicks != 0 && scenario.StreamOpenedTicks != 0
                ? Scenario.ColdWindowBytes / ((scenario.ColdWindowEndTicks - scenario.StreamOpenedTicks) / (double)Stopwatch.Frequency) / (1 << 20)
                : null,
            LimitColdRate = limitCold,
            LimitBackendEndKernelSecondsPerGiB = limitBackendKernel,
            LateNotifications = scenario.LateNotifications,
            Iterations = scenario.Iterations,
            AllocatedBytes = scenario.AllocatedBytes,
            DeviceCreditRequests = scenario.Counters.DeviceCreditRequests,
            DeviceCreditUpdates = scenario.Counters.DeviceCreditUpdates,
            GuestCreditRequests = scenario.Counters.GuestCreditRequests,
            GuestCreditUpdates = scenario.Counters.GuestCreditUpdates,
            RxPackets = scenario.Counters.RxPackets,
            TxPackets = scenario.Counters.TxPackets,
            Kicks = scenario.Counters.Kicks,
            CheckedBytes = checks.CheckedBytes,
            Violations = checks.Total + (finished ? 0 : (checks.Total == 0 ? 1 : 0)),
            ViolationSummary = finished || checks.Total != 0 ? checks.Summary() : "unfinished",
            CleanClose = scenario.CleanClose,
        };
    }

    private static (double P50, double P99) Percentiles(long[] ticks)
    {
        if (ticks.Length == 0)
        {
            return (0, 0);
        }

        Array.Sort(ticks);
        double scale = 1e6 / Stopwatch.Frequency;
        return (ticks[ticks.Length / 2] * scale, ticks[Math.Min(ticks.Length - 1, (int)(ticks.Length * 0.99))] * scale);
    }
}
