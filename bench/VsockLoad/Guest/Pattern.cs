namespace VsockLoad.Guest;

/// <summary>
/// The byte pattern every stream carries: byte <c>i</c> of a stream with seed <c>s</c> is
/// <c>(i + s) mod 251</c> (a prime period, so a chunk shifted by any power of two is caught).
/// Fill and compare copy from one precomputed table: no allocation, vectorized.
/// </summary>
internal static class Pattern
{
    private const int Period = 251;
    private const int Chunk = 64 * 1024;
    private static readonly byte[] Table = Build();

    /// <summary>Writes the pattern for stream offsets <c>[offset, offset + destination.Length)</c>.</summary>
    /// <param name="destination">Where.</param>
    /// <param name="offset">The stream offset of the first byte.</param>
    /// <param name="seed">The stream's seed.</param>
    public static void Fill(Span<byte> destination, long offset, int seed)
    {
        while (!destination.IsEmpty)
        {
            int length = Math.Min(destination.Length, Chunk);
            Table.AsSpan(Phase(offset, seed), length).CopyTo(destination);
            destination = destination[length..];
            offset += length;
        }
    }

    /// <summary>The index of the first byte that differs from the pattern, or -1.</summary>
    /// <param name="data">The received bytes.</param>
    /// <param name="offset">The stream offset of the first byte.</param>
    /// <param name="seed">The stream's seed.</param>
    /// <returns>The index, or -1 when every byte matches.</returns>
    public static int FirstMismatch(ReadOnlySpan<byte> data, long offset, int seed)
    {
        int done = 0;
        while (done < data.Length)
        {
            int length = Math.Min(data.Length - done, Chunk);
            ReadOnlySpan<byte> expected = Table.AsSpan(Phase(offset + done, seed), length);
            ReadOnlySpan<byte> actual = data.Slice(done, length);
            if (!actual.SequenceEqual(expected))
            {
                return done + actual.CommonPrefixLength(expected);
            }

            done += length;
        }

        return -1;
    }

    /// <summary>The expected byte at a stream offset.</summary>
    /// <param name="offset">The offset.</param>
    /// <param name="seed">The seed.</param>
    /// <returns>The byte.</returns>
    public static byte At(long offset, int seed) => Table[Phase(offset, seed)];

    private static int Phase(long offset, int seed) => (int)((offset + seed) % Period);

    private static byte[] Build()
    {
        byte[] table = new byte[Period + Chunk];
        for (int i = 0; i < table.Length; i++)
        {
            table[i] = (byte)(i % Period);
        }

        return table;
    }
}
