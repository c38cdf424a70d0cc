namespace VirtioVsock.Fuzz.Engine;

/// <summary>
/// Findings reported and not fixed yet (their code belongs to other work in progress). Their reproducers
/// live in the corpus as <c>finding-*</c>; the CI tests pass over inputs that fail exactly this way (and
/// show each open finding as a skipped test) so that the targets keep running on every build. Delete an
/// entry when its fix lands: its reproducer then simply has to pass.
/// </summary>
public static class KnownFindings
{
    /// <summary>The open findings: target, reproducer file, the start of the exception message, and the report.</summary>
    public static IReadOnlyList<(string Target, string File, string MessageStart, string Report)> Open { get; } =
    [
        (
            "device-tx",
            "finding-tx-stall-full-rst-ring",
            "TX chains not back in the used ring",
            "VsockDevice.Turn (src/Virtio.Vsock.Device/Device/VsockDevice.cs) runs at most 4 TX/RX rounds while TX is blocked on a full RST ring; "
            + "when the 4th round ends with _txBlocked still set, 'again' (txMore || rxMore) is false, so the loop is not woken again, TX notifications stay "
            + "disabled and, with EVENT_IDX and enough RX buffers (no RX kick), the pending TX chains are never processed. Reproducer: 40 RW packets for "
            + "an unknown connection, MaxPendingResets = 2, EVENT_IDX."
        ),
    ];

    /// <summary>Whether <paramref name="finding"/> is one of the open findings.</summary>
    /// <param name="finding">The finding.</param>
    /// <returns>Whether it is known.</returns>
    public static bool IsKnown(FuzzFinding finding)
    {
        ArgumentNullException.ThrowIfNull(finding);
        return Open.Any(open => open.Target == finding.Target && finding.Exception.Message.Contains(open.MessageStart, StringComparison.Ordinal));
    }
}
