using System.Globalization;
using System.Text;

namespace VsockLoad.Report;

/// <summary>The outcome of one run, printed as one <c>key=value</c> line.</summary>
internal sealed class RunResult
{
    /// <summary>Mode name.</summary>
    public required string Mode { get; init; }

    /// <summary>Bytes per write.</summary>
    public int WriteSize { get; init; }

    /// <summary>Whether EVENT_IDX was negotiated.</summary>
    public bool EventIdx { get; init; }

    /// <summary>Units measured (bytes, round trips or connections).</summary>
    public long Measured { get; init; }

    /// <summary>Seconds of the timed window.</summary>
    public double Seconds { get; init; }

    /// <summary>The figure: MiB/s, p50 µs, or connections/s.</summary>
    public double Value { get; init; }

    /// <summary>The unit of <see cref="Value"/>.</summary>
    public required string Unit { get; init; }

    /// <summary>p99 in µs (request/response only).</summary>
    public double? P99 { get; init; }

    /// <summary>The socketpair figure in the same unit, or null.</summary>
    public double? Limit { get; init; }

    /// <summary>The socketpair p99 (request/response).</summary>
    public double? LimitP99 { get; init; }

    /// <summary>Backend CPU seconds in the window, or null.</summary>
    public double? BackendCpuSeconds { get; init; }

    /// <summary>Backend CPU seconds in the kernel in the window, or null.</summary>
    public double? BackendKernelCpuSeconds { get; init; }

    /// <summary>The load generator's own CPU seconds in the window.</summary>
    public double DriverCpuSeconds { get; init; }

    /// <summary>Whole poll timeouts slept in the window with work pending.</summary>
    public long IdleTimeouts { get; init; }

    /// <summary>Idle timeouts that found used buffers no call announced.</summary>
    public long LateNotifications { get; init; }

    /// <summary>Loop iterations in the window.</summary>
    public long Iterations { get; init; }

    /// <summary>Bytes the tool allocated in the window.</summary>
    public long AllocatedBytes { get; init; }

    /// <summary>MiB/s over the first 64 MiB after the stream opened (cold start), or null.</summary>
    public double? ColdRate { get; init; }

    /// <summary>The socketpair limit's MiB/s over its first 64 MiB on a fresh pair, or null.</summary>
    public double? LimitColdRate { get; init; }

    /// <summary>
    /// Kernel CPU seconds per GiB of the socketpair limit's thread at the backend's end (the reader for
    /// host->guest, the writer for guest->host): the kernel's own cost of that end of a Unix socket, or null.
    /// </summary>
    public double? LimitBackendEndKernelSecondsPerGiB { get; init; }

    /// <summary>Bytes streamed (both directions) for per-GiB figures.</summary>
    public long StreamBytes { get; init; }

    /// <summary>CREDIT_REQUEST from the device.</summary>
    public long DeviceCreditRequests { get; init; }

    /// <summary>CREDIT_UPDATE from the device.</summary>
    public long DeviceCreditUpdates { get; init; }

    /// <summary>CREDIT_REQUEST from the guest.</summary>
    public long GuestCreditRequests { get; init; }

    /// <summary>CREDIT_UPDATE from the guest.</summary>
    public long GuestCreditUpdates { get; init; }

    /// <summary>RX packets.</summary>
    public long RxPackets { get; init; }

    /// <summary>TX packets.</summary>
    public long TxPackets { get; init; }

    /// <summary>Kicks.</summary>
    public long Kicks { get; init; }

    /// <summary>Bytes checked against the pattern.</summary>
    public long CheckedBytes { get; init; }

    /// <summary>Violations.</summary>
    public long Violations { get; init; }

    /// <summary>Violations by kind.</summary>
    public required string ViolationSummary { get; init; }

    /// <summary>Whether connections closed with RST / end of stream.</summary>
    public bool CleanClose { get; init; }

    /// <summary>Whether the run passed (no violation, finished).</summary>
    public bool Ok => Violations == 0;

    /// <summary>The result line.</summary>
    /// <returns>The line.</returns>
    public override string ToString()
    {
        var line = new StringBuilder();
        Add("vsockload mode", Mode);
        Add("write", WriteSize.ToString(CultureInfo.InvariantCulture));
        Add("event_idx", EventIdx ? "on" : "off");
        Add("measured", Measured.ToString(CultureInfo.InvariantCulture));
        Add("seconds", F(Seconds, 3));
        Add(Unit, F(Value, 1));
        if (P99 is { } p99)
        {
            Add("p99_us", F(p99, 1));
        }

        if (Limit is { } limit)
        {
            Add("limit_" + Unit, F(limit, 1));
            if (LimitP99 is { } limitP99)
            {
                Add("limit_p99_us", F(limitP99, 1));
            }

            Add("of_limit", F(Unit.EndsWith("_us", StringComparison.Ordinal) ? limit / Value : Value / limit, 3));
        }

        if (ColdRate is { } cold)
        {
            Add("first64MiB_MiB_per_s", F(cold, 1));
            if (Value > 0)
            {
                Add("first64_of_steady", F(cold / Value, 3));
            }

            if (LimitColdRate is { } limitCold && Limit is { } steadyLimit && steadyLimit > 0)
            {
                Add("limit_first64_of_steady", F(limitCold / steadyLimit, 3));
            }
        }

        double gib = StreamBytes / (double)(1L << 30);
        Add("cpu_s", BackendCpuSeconds is { } cpu ? F(cpu, 2) : "n/a");
        if (StreamBytes > 0)
        {
            Add("cpu_s_per_GiB", BackendCpuSeconds is { } cpuPer ? F(cpuPer / gib, 3) : "n/a");
            if (BackendKernelCpuSeconds is { } kernelCpu)
            {
                Add("cpu_kernel_s_per_GiB", F(kernelCpu / gib, 3));
            }

            if (LimitBackendEndKernelSecondsPerGiB is { } endKernel)
            {
                Add("limit_kernel_s_per_GiB", F(endKernel, 3));
            }

            Add("dev_credit_req_per_GiB", F(DeviceCreditRequests / gib, 0));
            Add("dev_credit_upd_per_GiB", F(DeviceCreditUpdates / gib, 0));
            Add("guest_credit_req_per_GiB", F(GuestCreditRequests / gib, 0));
            Add("guest_credit_upd_per_GiB", F(GuestCreditUpdates / gib, 0));
        }
        else
        {
            Add("dev_credit_req", DeviceCreditRequests.ToString(CultureInfo.InvariantCulture));
            Add("dev_credit_upd", DeviceCreditUpdates.ToString(CultureInfo.InvariantCulture));
        }

        Add("driver_cpu_s", F(DriverCpuSeconds, 2));
        Add("idle_timeouts", IdleTimeouts.ToString(CultureInfo.InvariantCulture));
        Add("late_calls", LateNotifications.ToString(CultureInfo.InvariantCulture));
        Add("loops", Iterations.ToString(CultureInfo.InvariantCulture));
        Add("driver_alloc_bytes", AllocatedBytes.ToString(CultureInfo.InvariantCulture));
        Add("rx_pkts", RxPackets.ToString(CultureInfo.InvariantCulture));
        Add("tx_pkts", TxPackets.ToString(CultureInfo.InvariantCulture));
        Add("kicks", Kicks.ToString(CultureInfo.InvariantCulture));
        Add("checked", CheckedBytes.ToString(CultureInfo.InvariantCulture));
        Add("clean_close", CleanClose ? "yes" : "no");
        Add("violations", Violations.ToString(CultureInfo.InvariantCulture));
        Add("violation_kinds", ViolationSummary);
        Add("result", Ok ? "ok" : "FAIL");
        return line.ToString();

        void Add(string key, string value)
        {
            if (line.Length > 0)
            {
                line.Append(' ');
            }

            line.Append(key).Append('=').Append(value);
        }
    }

    private static string F(double value, int decimals) => value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
}
