using System.Buffers.Binary;
using Virtio.Memory;
using Virtio.Queue;

namespace VirtioVsock.Fuzz.Targets;

/// <summary>
/// An independent model of a descriptor chain walk, written from the rules in virtqueue.md rather than
/// from <see cref="DescriptorChain"/>: the buffers a well-formed prefix of the chain describes and
/// whether the walk ends in an error. The packet targets compare the parsers against it.
/// </summary>
internal sealed class ReferenceChain
{
    private const int MaxIndirectEntries = 32768;

    private ReferenceChain(List<Descriptor> buffers, bool failed)
    {
        Buffers = buffers;
        Failed = failed;
    }

    /// <summary>The buffer descriptors in order, up to the first broken rule (the INDIRECT descriptor itself is not one).</summary>
    public IReadOnlyList<Descriptor> Buffers { get; }

    /// <summary>Whether a rule was broken after <see cref="Buffers"/>.</summary>
    public bool Failed { get; }

    /// <summary>Walks the chain starting at <paramref name="head"/>.</summary>
    /// <param name="memory">Guest memory.</param>
    /// <param name="table">The descriptor table.</param>
    /// <param name="queueSize">The queue size.</param>
    /// <param name="head">The head index from the available ring.</param>
    /// <param name="indirectAllowed">Whether INDIRECT_DESC was negotiated.</param>
    /// <returns>The model of the chain.</returns>
    public static ReferenceChain Walk(GuestMemory memory, GuestAddress table, ushort queueSize, ushort head, bool indirectAllowed)
    {
        var buffers = new List<Descriptor>();
        uint next = head;
        bool inIndirect = false;
        ulong indirectTable = 0;
        uint indirectEntries = 0;
        bool sawWritable = false;
        int count = 0;
        while (true)
        {
            Descriptor current;
            if (inIndirect)
            {
                if (next >= indirectEntries || !TryRead(memory, indirectTable + (16UL * next), out current) || current.IsIndirect)
                {
                    return new ReferenceChain(buffers, true);
                }
            }
            else
            {
                if (next >= queueSize || !TryRead(memory, table.Value + (16UL * next), out current))
                {
                    return new ReferenceChain(buffers, true);
                }

                if (current.IsIndirect)
                {
                    uint length = current.Length;
                    if (!indirectAllowed || current.HasNext || length == 0 || length % 16 != 0 || length / 16 > MaxIndirectEntries
                        || !Inside(memory, current.Address.Value, length))
                    {
                        return new ReferenceChain(buffers, true);
                    }

                    inIndirect = true;
                    indirectTable = current.Address.Value;
                    indirectEntries = length / 16;
                    if (!TryRead(memory, indirectTable, out current) || current.IsIndirect)
                    {
                        return new ReferenceChain(buffers, true);
                    }
                }
            }

            if (++count > queueSize)
            {
                return new ReferenceChain(buffers, true);
            }

            if (current.IsWriteOnly)
            {
                sawWritable = true;
            }
            else if (sawWritable)
            {
                return new ReferenceChain(buffers, true);
            }

            if (current.Length != 0 && !Inside(memory, current.Address.Value, current.Length))
            {
                return new ReferenceChain(buffers, true);
            }

            buffers.Add(current);
            if (!current.HasNext)
            {
                return new ReferenceChain(buffers, false);
            }

            next = current.Next;
        }
    }

    /// <summary>Whether every byte of <c>[address, address + length)</c> lies in a region (regions may be adjacent).</summary>
    /// <param name="memory">Guest memory.</param>
    /// <param name="address">The first byte.</param>
    /// <param name="length">The length (at least 1).</param>
    /// <returns>Whether the range is inside memory.</returns>
    public static bool Inside(GuestMemory memory, ulong address, ulong length)
    {
        ulong position = address;
        ulong remaining = length;
        while (remaining != 0)
        {
            GuestRegion? holder = null;
            foreach (GuestRegion region in memory.Regions)
            {
                if (position >= region.Start.Value && position <= region.Last.Value)
                {
                    holder = region;
                    break;
                }
            }

            if (holder is null)
            {
                return false;
            }

            ulong availableMinusOne = holder.Last.Value - position;
            if (remaining - 1 <= availableMinusOne)
            {
                return true;
            }

            remaining -= availableMinusOne + 1;
            if (holder.Last.Value == ulong.MaxValue)
            {
                return false;
            }

            position = holder.Last.Value + 1;
        }

        return true;
    }

    /// <summary>Concatenates the bytes of the buffers <paramref name="from"/> on, up to <paramref name="limit"/> bytes, stopping at the first buffer whose direction differs from <paramref name="writable"/>.</summary>
    /// <param name="memory">Guest memory.</param>
    /// <param name="writable">The direction of the run of buffers to read.</param>
    /// <param name="limit">The most bytes to return.</param>
    /// <returns>The bytes.</returns>
    public byte[] Flatten(GuestMemory memory, bool writable, int limit)
    {
        var bytes = new List<byte>();
        foreach (Descriptor buffer in Buffers)
        {
            if (buffer.IsWriteOnly != writable || bytes.Count >= limit)
            {
                break;
            }

            int take = (int)Math.Min(buffer.Length, (uint)(limit - bytes.Count));
            byte[] piece = new byte[take];
            if (take > 0 && memory.Read(buffer.Address, piece) != MemoryError.None)
            {
                throw new InvalidOperationException($"reference read of {buffer} failed");
            }

            bytes.AddRange(piece);
        }

        return [.. bytes];
    }

    /// <summary>The total length of the leading run of buffers in direction <paramref name="writable"/>.</summary>
    /// <param name="writable">The direction.</param>
    /// <param name="stoppedEarly">Whether a buffer of the other direction ended the run.</param>
    /// <returns>The bytes in the run.</returns>
    public ulong RunLength(bool writable, out bool stoppedEarly)
    {
        ulong total = 0;
        stoppedEarly = false;
        foreach (Descriptor buffer in Buffers)
        {
            if (buffer.IsWriteOnly != writable)
            {
                stoppedEarly = true;
                break;
            }

            total += buffer.Length;
        }

        return total;
    }

    /// <summary>Whether any two non-empty buffers of the chain overlap in guest memory.</summary>
    /// <returns>Whether buffers alias.</returns>
    public bool HasOverlaps()
    {
        for (int i = 0; i < Buffers.Count; i++)
        {
            for (int j = i + 1; j < Buffers.Count; j++)
            {
                Descriptor a = Buffers[i];
                Descriptor b = Buffers[j];
                if (a.Length != 0 && b.Length != 0
                    && a.Address.Value <= b.Address.Value + (b.Length - 1) && b.Address.Value <= a.Address.Value + (a.Length - 1))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private static bool TryRead(GuestMemory memory, ulong address, out Descriptor descriptor)
    {
        descriptor = default;
        Span<byte> raw = stackalloc byte[16];
        if (!Inside(memory, address, 16) || memory.Read(new GuestAddress(address), raw) != MemoryError.None)
        {
            return false;
        }

        descriptor = new Descriptor(
            new GuestAddress(BinaryPrimitives.ReadUInt64LittleEndian(raw)),
            BinaryPrimitives.ReadUInt32LittleEndian(raw[8..]),
            (DescriptorFlags)BinaryPrimitives.ReadUInt16LittleEndian(raw[12..]),
            BinaryPrimitives.ReadUInt16LittleEndian(raw[14..]));
        return true;
    }
}
