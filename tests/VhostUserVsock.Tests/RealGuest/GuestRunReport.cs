using System.Globalization;
using System.Text;
using VhostUserVsock.Tests.Guest;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>Everything one <see cref="GuestRun"/> produced.</summary>
public sealed class GuestRunReport
{
    /// <summary>The guest image.</summary>
    public required GuestImage Image { get; init; }

    /// <summary>The GUEST-READY line, or null when the guest never got there.</summary>
    public GuestReadyInfo? Ready { get; init; }

    /// <summary>Why the run as a whole failed (no boot, wrong CID, no GUEST-DONE, daemon died), or null.</summary>
    public string? RunFailure { get; init; }

    /// <summary>Host time from QEMU start to GUEST-READY.</summary>
    public TimeSpan? BootTime { get; init; }

    /// <summary>Host time of the whole run.</summary>
    public TimeSpan Elapsed { get; init; }

    /// <summary>How QEMU's run ended.</summary>
    public GuestOutcome Outcome { get; init; }

    /// <summary>Each scenario's outcome, by name.</summary>
    public required IReadOnlyDictionary<string, ScenarioOutcome> Scenarios { get; init; }

    /// <summary>The serial console.</summary>
    public string SerialLog { get; init; } = "";

    /// <summary>The daemon's log at the end of the run.</summary>
    public string DaemonLog { get; init; } = "";

    /// <summary>The kernel's warnings and worse (KMSG lines).</summary>
    public IReadOnlyList<string> KernelWarnings { get; init; } = [];

    /// <summary>The daemon's log lines at Error or Critical level (the console logger's "fail:" and "crit:").</summary>
    public IReadOnlyList<string> DaemonErrors =>
        [.. DaemonLog.Split('\n').Where(l => l.Contains(" fail: ", StringComparison.Ordinal) || l.Contains(" crit: ", StringComparison.Ordinal))];

    /// <summary>Throws when the run failed, the guest kernel logged warnings, or the daemon logged errors.</summary>
    public void AssertClean()
    {
        Assert.True(RunFailure is null, RunFailure);
        var kernel = RelevantKernelWarnings();
        Assert.True(kernel.Count == 0, "the guest kernel logged warnings or worse:\n" + string.Join('\n', kernel));
        Assert.True(DaemonErrors.Count == 0, "the daemon logged errors:\n" + string.Join('\n', DaemonErrors));
    }

    /// <summary>
    /// Messages of the emulated machine itself, not of anything under test, that a TCG guest on a loaded host logs:
    /// at boot it can miss the kernel's IO-APIC timer check (it then routes the timer another way and boots
    /// normally), and later a timer interrupt can take long when its vCPU thread was descheduled.
    /// </summary>
    private static readonly string[] EmulatedMachineMessages =
    [
        "MP-BIOS bug: 8254 timer not connected to IO-APIC",
        "hrtimer: interrupt took ",
    ];

    /// <summary>
    /// The kernel lines that matter: errors or worse (levels 0-3) at any time, and warnings that
    /// mention virtio/vsock or come after GUEST-READY (boot-time warnings of the emulated machine,
    /// such as "tsc: Unable to calibrate against PIT", do not; nor, at any time, do the
    /// <see cref="EmulatedMachineMessages"/>).
    /// </summary>
    public IReadOnlyList<string> RelevantKernelWarnings()
    {
        var readyAt = Ready?.UptimeSeconds ?? 0;
        return [.. KernelWarnings.Where(line =>
        {
            var m = System.Text.RegularExpressions.Regex.Match(line, @"^KMSG <(\d)>\[\s*([0-9.]+)\]");
            if (!m.Success)
                return true;
            int level = m.Groups[1].Value[0] - '0';
            double at = double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
            if (EmulatedMachineMessages.Any(e => line.Contains(e, StringComparison.Ordinal)))
                return false;
            return level <= 3 || at >= readyAt
                || line.Contains("virtio", StringComparison.OrdinalIgnoreCase) || line.Contains("vsock", StringComparison.OrdinalIgnoreCase);
        })];
    }

    /// <summary>A one-paragraph summary: guest, boot time, each scenario pass/fail.</summary>
    public string Summary()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{Image.Suite} guest, kernel {Ready?.Kernel ?? Image.KernelVersion ?? "?"}: ");
        sb.Append(CultureInfo.InvariantCulture, $"ready after {BootTime?.TotalSeconds:0.0} s, run {Elapsed.TotalSeconds:0.0} s, outcome {Outcome}\n");
        if (RunFailure is not null)
            sb.Append("RUN FAILURE: ").Append(RunFailure).Append('\n');
        foreach (var s in Scenarios.Values)
        {
            sb.Append(CultureInfo.InvariantCulture, $"  {(s.Passed ? "PASS" : "FAIL")} {s.Name} ({s.Elapsed.TotalSeconds:0.0} s)");
            foreach (var (k, v) in s.Metrics)
                sb.Append(CultureInfo.InvariantCulture, $" {k}={v:0.##}");
            sb.Append('\n');
        }
        foreach (var w in KernelWarnings)
            sb.Append("  kernel: ").Append(w).Append('\n');
        return sb.ToString();
    }
}
