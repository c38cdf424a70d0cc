namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// The payload pattern of tests/guest/vsocktest.c: the byte at stream offset k (counted from the
/// first byte of a connection, or of a message for SEQPACKET) is <c>(k + seed) % 251</c>.
/// </summary>
public static class VsockPattern
{
    /// <summary>The pattern's period (prime, so shifted or repeated chunks are caught).</summary>
    public const int Period = 251;

    private const int TableChunk = 1 << 20;

    // Period + 1 MiB of pattern starting at phase 0: any window of up to 1 MiB at any phase is a slice.
    private static readonly byte[] Table = BuildTable();

    /// <summary>The pattern byte at <paramref name="offset"/> for <paramref name="seed"/>.</summary>
    public static byte At(long offset, uint seed) => (byte)((offset + seed) % Period);

    /// <summary>Fills <paramref name="destination"/> with the pattern from stream offset <paramref name="offset"/>.</summary>
    public static void Fill(Span<byte> destination, long offset, uint seed)
    {
        while (destination.Length > 0)
        {
            int n = Math.Min(destination.Length, TableChunk);
            Window(offset, seed, n).CopyTo(destination);
            destination = destination[n..];
            offset += n;
        }
    }

    /// <summary>A new array of <paramref name="length"/> pattern bytes from offset 0.</summary>
    public static byte[] Create(int length, uint seed)
    {
        var bytes = new byte[length];
        Fill(bytes, 0, seed);
        return bytes;
    }

    /// <summary>
    /// The index in <paramref name="data"/> of the first byte that differs from the pattern at
    /// <paramref name="offset"/>, or -1 when all match.
    /// </summary>
    public static int FindMismatch(ReadOnlySpan<byte> data, long offset, uint seed)
    {
        int done = 0;
        while (done < data.Length)
        {
            int n = Math.Min(data.Length - done, TableChunk);
            var expected = Window(offset + done, seed, n);
            var actual = data.Slice(done, n);
            if (!actual.SequenceEqual(expected))
                return done + actual.CommonPrefixLength(expected);
            done += n;
        }
        return -1;
    }

    /// <summary>CRC-32 (IEEE) of the first <paramref name="count"/> pattern bytes.</summary>
    public static uint Crc32Of(long count, uint seed)
    {
        var crc = new System.IO.Hashing.Crc32();
        long done = 0;
        while (done < count)
        {
            int n = (int)Math.Min(count - done, TableChunk);
            crc.Append(Window(done, seed, n));
            done += n;
        }
        return crc.GetCurrentHashAsUInt32();
    }

    private static ReadOnlySpan<byte> Window(long offset, uint seed, int length) =>
        Table.AsSpan((int)((offset + seed) % Period), length);

    private static byte[] BuildTable()
    {
        var table = new byte[Period + TableChunk];
        for (int i = 0; i < table.Length; i++)
            table[i] = (byte)(i % Period);
        return table;
    }
}
