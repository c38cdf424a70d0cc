using System.Buffers.Binary;

namespace VirtioVsock.Fuzz.Engine;

/// <summary>
/// Reads structured values off the front of a fuzz input. Past the end every read yields zeros, so a
/// truncated input is still a valid (shorter) program and no target has to check lengths.
/// </summary>
public ref struct FuzzReader
{
    private ReadOnlySpan<byte> _data;

    /// <summary>Creates a reader over <paramref name="data"/>.</summary>
    /// <param name="data">The input.</param>
    public FuzzReader(ReadOnlySpan<byte> data)
    {
        _data = data;
    }

    /// <summary>Whether every byte was consumed.</summary>
    public readonly bool IsEmpty => _data.IsEmpty;

    /// <summary>The number of bytes left.</summary>
    public readonly int Remaining => _data.Length;

    /// <summary>Reads one byte (0 past the end).</summary>
    /// <returns>The byte.</returns>
    public byte U8()
    {
        if (_data.IsEmpty)
        {
            return 0;
        }

        byte value = _data[0];
        _data = _data[1..];
        return value;
    }

    /// <summary>Reads a little-endian u16 (missing bytes read as 0).</summary>
    /// <returns>The value.</returns>
    public ushort U16()
    {
        Span<byte> raw = stackalloc byte[2];
        Fill(raw);
        return BinaryPrimitives.ReadUInt16LittleEndian(raw);
    }

    /// <summary>Reads a little-endian u32 (missing bytes read as 0).</summary>
    /// <returns>The value.</returns>
    public uint U32()
    {
        Span<byte> raw = stackalloc byte[4];
        Fill(raw);
        return BinaryPrimitives.ReadUInt32LittleEndian(raw);
    }

    /// <summary>Reads a little-endian u64 (missing bytes read as 0).</summary>
    /// <returns>The value.</returns>
    public ulong U64()
    {
        Span<byte> raw = stackalloc byte[8];
        Fill(raw);
        return BinaryPrimitives.ReadUInt64LittleEndian(raw);
    }

    /// <summary>Takes up to <paramref name="count"/> bytes (fewer at the end of the input).</summary>
    /// <param name="count">The most bytes to take.</param>
    /// <returns>The bytes taken.</returns>
    public ReadOnlySpan<byte> Bytes(int count)
    {
        int n = Math.Clamp(count, 0, _data.Length);
        ReadOnlySpan<byte> taken = _data[..n];
        _data = _data[n..];
        return taken;
    }

    /// <summary>Takes every remaining byte.</summary>
    /// <returns>The rest of the input.</returns>
    public ReadOnlySpan<byte> Rest() => Bytes(_data.Length);

    private void Fill(scoped Span<byte> destination)
    {
        destination.Clear();
        ReadOnlySpan<byte> taken = Bytes(destination.Length);
        taken.CopyTo(destination);
    }
}
