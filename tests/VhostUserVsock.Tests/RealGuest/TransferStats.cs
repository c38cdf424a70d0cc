using System.Globalization;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>What one side of a host-side stream transfer saw.</summary>
/// <param name="Bytes">Payload bytes moved.</param>
/// <param name="Crc32">CRC-32 (IEEE, as vsocktest prints it) of those bytes.</param>
/// <param name="MismatchAt">Offset of the first byte that broke the pattern, or -1 (also -1 when not checked).</param>
/// <param name="Elapsed">From the first call until the end (EOF read, or the last byte written).</param>
public sealed record TransferStats(long Bytes, uint Crc32, long MismatchAt, TimeSpan Elapsed)
{
    /// <summary>Throughput in MiB/s over <see cref="Elapsed"/>.</summary>
    public double MiBPerSecond => Elapsed > TimeSpan.Zero ? Bytes / 1048576.0 / Elapsed.TotalSeconds : 0;

    /// <summary>The CRC as vsocktest prints it: 8 lowercase hex digits.</summary>
    public string Crc32Hex => Crc32.ToString("x8", CultureInfo.InvariantCulture);

    /// <inheritdoc/>
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"bytes={Bytes} crc32={Crc32Hex} ms={Elapsed.TotalMilliseconds:0} mibps={MiBPerSecond:0.00}{(MismatchAt >= 0 ? $" pattern-mismatch-at={MismatchAt}" : "")}");
}
