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
        ("device-tx", "finding-tx-stall-full-rst-ring", "TX chains not back in the used ring", TxStall),
        ("packet-tx", "finding-avail-index-across-regions", "RingOutsideMemory", RingFieldAcrossRegions),
        ("packet-tx", "finding-used-index-across-regions", "RingOutsideMemory", RingFieldAcrossRegions),
        ("packet-rx", "finding-avail-index-across-regions", "RingOutsideMemory", RingFieldAcrossRegions),
    ];

    private const string TxStall =
        "VsockDevice.Turn (src/Virtio.Vsock.Device/Device/VsockDevice.cs) runs at most 4 TX/RX rounds while TX is blocked on a full RST ring; "
        + "when the 4th round ends with _txBlocked still set, 'again' (txMore || rxMore) is false, so the loop is not woken again, TX notifications stay "
        + "disabled and, with EVENT_IDX and enough RX buffers (no RX kick), the pending TX chains are never processed. Reproducer: 40 RW packets for "
        + "an unknown connection, MaxPendingResets = 2, EVENT_IDX.";

    private const string RingFieldAcrossRegions =
        "VirtQueue.Validate (src/Virtio.Queue/VirtQueue.cs) accepts rings that span adjacent regions (GuestMemory.CheckRange), but the ring "
        + "indices are read and written atomically (GuestArea.LoadU16Acquire / StoreU16Release -> GuestMemory.Translate), which fails with "
        + "CrossesRegions when a region boundary falls at an odd address inside avail.idx, used.idx, a flags or an event field: a queue that "
        + "validated then reports RingOutsideMemory from TryPopChain / AddUsed (the vsock device stops it as corrupt). vhost-user does not require "
        + "page-aligned region boundaries, so a frontend can set this up. Reproducer: queue size 4, regions [0,1) [1,67) [67,32K), avail ring at 64.";

    /// <summary>
    /// Steers mutated inputs away from open findings that mutation hits too often to leave time for anything
    /// else: while the TX stall is open, <c>device-tx</c> inputs run without the two-slot RST ring (option bit
    /// 0x04), the only configuration in which the harness fills that ring; while ring fields may straddle
    /// regions, <c>packet-tx</c> / <c>packet-rx</c> inputs get even region boundaries. Corpus files (the
    /// reproducers included) and AFL / libFuzzer runs are not changed.
    /// </summary>
    /// <param name="target">The target name.</param>
    /// <param name="input">A mutated input.</param>
    /// <returns>The input to run.</returns>
    public static byte[] AvoidOpen(string target, byte[] input)
    {
        ArgumentNullException.ThrowIfNull(input);
        byte[] changed = input;
        if (target == "device-tx" && input.Length > 0 && (input[0] & 0x04) != 0)
        {
            changed = [.. input];
            changed[0] &= 0xfb;
        }

        if (target is "packet-tx" or "packet-rx" && input.Length > 4 && ((input[2] | input[4]) & 1) != 0)
        {
            // Even region boundaries: no ring index can straddle one.
            changed = [.. input];
            changed[2] &= 0xfe;
            changed[4] &= 0xfe;
        }

        return changed;
    }

    /// <summary>Whether <paramref name="finding"/> is one of the open findings.</summary>
    /// <param name="finding">The finding.</param>
    /// <returns>Whether it is known.</returns>
    public static bool IsKnown(FuzzFinding finding)
    {
        ArgumentNullException.ThrowIfNull(finding);
        return Open.Any(open => open.Target == finding.Target && finding.Exception.Message.Contains(open.MessageStart, StringComparison.Ordinal));
    }
}
