namespace Virtio.Memory;

/// <summary>How a <see cref="GuestRegion.PrefaultResidentPages"/> pass ended.</summary>
public enum PrefaultOutcome
{
    /// <summary>Every page in the asked range was looked at; the resident ones are mapped.</summary>
    Completed,

    /// <summary>The token was cancelled or the region was released before the end; what was mapped stays mapped.</summary>
    Cancelled,

    /// <summary>The kernel has no <c>MADV_POPULATE_READ</c> (before Linux 5.14) or refuses it for this mapping; nothing more was tried.</summary>
    Unsupported,

    /// <summary>A system call failed (see <see cref="PrefaultResult.Errno"/>), for example because the file was truncated under the mapping.</summary>
    Failed,
}

/// <summary>What a <see cref="GuestRegion.PrefaultResidentPages"/> pass did.</summary>
/// <param name="Outcome">How it ended.</param>
/// <param name="PagesScanned">Pages whose residency was looked at.</param>
/// <param name="PagesMapped">Resident pages entered into this process's page tables.</param>
/// <param name="Errno">The <c>errno</c> of the failing call for <see cref="PrefaultOutcome.Failed"/> and <see cref="PrefaultOutcome.Unsupported"/>, else 0.</param>
public readonly record struct PrefaultResult(PrefaultOutcome Outcome, long PagesScanned, long PagesMapped, int Errno)
{
    /// <inheritdoc/>
    public override string ToString() =>
        $"{Outcome}: {PagesMapped} of {PagesScanned} pages scanned were resident and are mapped" + (Errno != 0 ? $" (errno {Errno})" : string.Empty);
}
