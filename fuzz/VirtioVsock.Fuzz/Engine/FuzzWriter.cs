using System.Buffers.Binary;

namespace VirtioVsock.Fuzz.Engine;

/// <summary>Builds fuzz inputs (the seed corpus) in the format the targets read with <see cref="FuzzReader"/>.</summary>
public sealed class FuzzWriter
{
    private readonly List<byte> _bytes = [];

    /// <summary>The number of bytes written so far.</summary>
    public int Length => _bytes.Count;

    /// <summary>Appends one byte.</summary>
    /// <param name="value">The byte.</param>
    /// <returns>This writer.</returns>
    public FuzzWriter U8(byte value)
    {
        _bytes.Add(value);
        return this;
    }

    /// <summary>Appends a little-endian u16.</summary>
    /// <param name="value">The value.</param>
    /// <returns>This writer.</returns>
    public FuzzWriter U16(ushort value)
    {
        Span<byte> raw = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(raw, value);
        return Bytes(raw);
    }

    /// <summary>Appends a little-endian u32.</summary>
    /// <param name="value">The value.</param>
    /// <returns>This writer.</returns>
    public FuzzWriter U32(uint value)
    {
        Span<byte> raw = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(raw, value);
        return Bytes(raw);
    }

    /// <summary>Appends a little-endian u64.</summary>
    /// <param name="value">The value.</param>
    /// <returns>This writer.</returns>
    public FuzzWriter U64(ulong value)
    {
        Span<byte> raw = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(raw, value);
        return Bytes(raw);
    }

    /// <summary>Appends raw bytes.</summary>
    /// <param name="bytes">The bytes.</param>
    /// <returns>This writer.</returns>
    public FuzzWriter Bytes(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
        {
            _bytes.Add(b);
        }

        return this;
    }

    /// <summary>Overwrites bytes already written at <paramref name="offset"/>.</summary>
    /// <param name="offset">Where to write.</param>
    /// <param name="bytes">The bytes; the writer grows when they reach past its end.</param>
    /// <returns>This writer.</returns>
    public FuzzWriter Patch(int offset, ReadOnlySpan<byte> bytes)
    {
        while (_bytes.Count < offset + bytes.Length)
        {
            _bytes.Add(0);
        }

        for (int i = 0; i < bytes.Length; i++)
        {
            _bytes[offset + i] = bytes[i];
        }

        return this;
    }

    /// <summary>The bytes written.</summary>
    /// <returns>A new array.</returns>
    public byte[] ToArray() => [.. _bytes];
}
