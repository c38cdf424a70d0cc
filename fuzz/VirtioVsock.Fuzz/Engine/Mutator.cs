using System.Buffers.Binary;

namespace VirtioVsock.Fuzz.Engine;

/// <summary>
/// A small deterministic mutator in the spirit of AFL's havoc stage (bit flips, interesting values,
/// arithmetic, block insert/delete/duplicate, splicing with another corpus entry), so CI exercises the
/// targets on thousands of inputs without AFL. The same seed always gives the same inputs.
/// </summary>
public sealed class Mutator
{
    /// <summary>The largest input produced.</summary>
    public const int MaxLength = 64 * 1024;

    private static readonly long[] Interesting =
    [
        0, 1, 2, 3, 4, 7, 8, 12, 15, 16, 31, 32, 43, 44, 45, 63, 64, 100, 127, 128, 255, 256, 511, 512, 1000, 1023, 1024,
        4095, 4096, 4097, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, -1, -2, long.MaxValue, long.MinValue,
    ];

    private readonly Random _random;

    /// <summary>Creates a mutator.</summary>
    /// <param name="seed">The seed (same seed, same inputs).</param>
    public Mutator(int seed)
    {
        _random = new Random(seed);
    }

    /// <summary>Derives a new input from <paramref name="parent"/>, maybe spliced with <paramref name="other"/>.</summary>
    /// <param name="parent">The input to mutate.</param>
    /// <param name="other">Another corpus entry, for splicing.</param>
    /// <returns>The new input.</returns>
    public byte[] Mutate(ReadOnlySpan<byte> parent, ReadOnlySpan<byte> other)
    {
        var data = new List<byte>(parent.Length + 64);
        foreach (byte b in parent)
        {
            data.Add(b);
        }

        int rounds = 1 << _random.Next(0, 4);
        for (int round = 0; round < rounds; round++)
        {
            MutateOnce(data, other);
        }

        if (data.Count > MaxLength)
        {
            data.RemoveRange(MaxLength, data.Count - MaxLength);
        }

        return [.. data];
    }

    private void MutateOnce(List<byte> data, ReadOnlySpan<byte> other)
    {
        if (data.Count == 0)
        {
            data.Add((byte)_random.Next(256));
            return;
        }

        int position = Position(data.Count);
        switch (_random.Next(12))
        {
            case 0:
                data[position] ^= (byte)(1 << _random.Next(8));
                break;
            case 1:
                data[position] = (byte)_random.Next(256);
                break;
            case 2:
            case 3:
                {
                    int width = 1 << _random.Next(4);
                    long value = Interesting[_random.Next(Interesting.Length)];
                    Span<byte> raw = stackalloc byte[8];
                    BinaryPrimitives.WriteInt64LittleEndian(raw, value);
                    for (int i = 0; i < width && position + i < data.Count; i++)
                    {
                        data[position + i] = raw[i];
                    }

                    break;
                }

            case 4:
                {
                    int delta = _random.Next(1, 36) * (_random.Next(2) == 0 ? 1 : -1);
                    if (position + 1 < data.Count && _random.Next(2) == 0)
                    {
                        ushort value = (ushort)(data[position] | (data[position + 1] << 8));
                        value = (ushort)(value + delta);
                        data[position] = (byte)value;
                        data[position + 1] = (byte)(value >> 8);
                    }
                    else
                    {
                        data[position] = (byte)(data[position] + delta);
                    }

                    break;
                }

            case 5:
                {
                    int count = Math.Min(BlockLength(), data.Count - position);
                    data.RemoveRange(position, count);
                    break;
                }

            case 6:
                {
                    int count = BlockLength();
                    var block = new byte[count];
                    _random.NextBytes(block);
                    data.InsertRange(position, block);
                    break;
                }

            case 7:
                {
                    int from = Position(data.Count);
                    int count = Math.Min(BlockLength(), data.Count - from);
                    data.InsertRange(position, data.GetRange(from, count));
                    break;
                }

            case 8:
                {
                    int from = Position(data.Count);
                    int count = Math.Min(BlockLength(), Math.Min(data.Count - from, data.Count - position));
                    List<byte> block = data.GetRange(from, count);
                    for (int i = 0; i < count; i++)
                    {
                        data[position + i] = block[i];
                    }

                    break;
                }

            case 9 when !other.IsEmpty:
                {
                    // Splice: keep a prefix of this input, continue with a suffix of the other.
                    int cut = Position(other.Length);
                    data.RemoveRange(position, data.Count - position);
                    foreach (byte b in other[cut..])
                    {
                        data.Add(b);
                    }

                    break;
                }

            case 10:
                data.RemoveRange(position, data.Count - position);
                break;
            default:
                {
                    int count = Math.Min(BlockLength(), data.Count - position);
                    byte fill = _random.Next(2) == 0 ? (byte)0 : (byte)_random.Next(256);
                    for (int i = 0; i < count; i++)
                    {
                        data[position + i] = fill;
                    }

                    break;
                }
        }
    }

    /// <summary>Mostly near the front, where the structure (headers, selectors) is.</summary>
    private int Position(int length) =>
        _random.Next(3) == 0 ? _random.Next(Math.Min(length, 64)) : _random.Next(length);

    private int BlockLength() => _random.Next(4) switch
    {
        0 => 1,
        1 => _random.Next(1, 8),
        2 => _random.Next(1, 64),
        _ => _random.Next(1, 1024),
    };
}
