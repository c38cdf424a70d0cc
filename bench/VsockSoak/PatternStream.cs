namespace VsockSoak;

/// <summary>
/// The bytes one side of a soak connection sends: a pseudo-random stream fixed by a seed, so the receiver
/// regenerates it and checks every byte without keeping a copy. Owns a seed and a position only; it must
/// never allocate per call (it runs on every chunk).
/// </summary>
internal struct PatternStream
{
    private readonly ulong _seed;

    /// <summary>Creates the stream of <paramref name="seed"/>, at position 0.</summary>
    public PatternStream(ulong seed) => _seed = seed;

    /// <summary>Bytes produced or checked so far.</summary>
    public long Position { get; private set; }

    /// <summary>Writes the next <paramref name="destination"/>.Length bytes of the stream.</summary>
    public void Fill(Span<byte> destination)
    {
        int i = 0;
        while (i < destination.Length)
        {
            long offset = Position + i;
            ulong block = Block(offset >> 3);
            for (int b = (int)(offset & 7); b < 8 && i < destination.Length; b++, i++)
            {
                destination[i] = (byte)(block >> (b * 8));
            }
        }

        Position += destination.Length;
    }

    /// <summary>Checks that <paramref name="received"/> is the next part of the stream and advances past it.</summary>
    /// <returns>The offset in the stream of the first wrong byte, or -1 when all are right.</returns>
    public long Verify(ReadOnlySpan<byte> received)
    {
        long bad = -1;
        int i = 0;
        while (i < received.Length && bad < 0)
        {
            long offset = Position + i;
            ulong block = Block(offset >> 3);
            for (int b = (int)(offset & 7); b < 8 && i < received.Length; b++, i++)
            {
                if (received[i] != (byte)(block >> (b * 8)))
                {
                    bad = Position + i;
                    break;
                }
            }
        }

        Position += received.Length;
        return bad;
    }

    private readonly ulong Block(long index)
    {
        // SplitMix64 of (seed, 8-byte block index): cheap, and any shift, swap or loss of data shows.
        ulong z = _seed + ((ulong)index * 0x9E3779B97F4A7C15UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
