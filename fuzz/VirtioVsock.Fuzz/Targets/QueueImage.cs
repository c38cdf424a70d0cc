using System.Buffers.Binary;
using Virtio.Memory;
using Virtio.Queue;
using VirtioVsock.Fuzz.Engine;

namespace VirtioVsock.Fuzz.Targets;

/// <summary>
/// Turns a fuzz input into guest memory holding one split virtqueue: the memory layout (base address,
/// up to three regions, holes), the queue's configuration and the raw bytes of the whole image
/// (descriptor table, rings and buffers), so a fuzzer controls every byte a hostile driver could write.
/// </summary>
/// <remarks>
/// <para>Input layout (<see cref="Encode"/> writes it):</para>
/// <code>
/// u8  config   size = 1 &lt;&lt; (c &amp; 7); 0x08 INDIRECT_DESC; 0x10 EVENT_IDX; 0x20 absolute descriptor addresses
///              (otherwise the image base is added to every descriptor-table address, so small offsets land in memory)
/// u8  layout   base = Bases[l &amp; 3]; regions = 1 + ((l &gt;&gt; 2) &amp; 3) % 3; bits 4-5: a 64-byte hole after region 1 / 2
/// u16 split1, u16 split2   region boundaries (mod <see cref="ImageSize"/>)
/// u16 avail.idx, u16 next_avail
/// u8  max data selector (<see cref="MaxDataSizes"/>)
/// u8  ring placement: descriptor table at (r &amp; 15) * 2048 (mod the image), the rings right after it
/// ... the image itself, from offset 0 (the rest stays zero)
/// </code>
/// </remarks>
internal sealed class QueueImage : IDisposable
{
    /// <summary>The size of the guest physical range the image covers.</summary>
    public const int ImageSize = 32 * 1024;

    /// <summary>The size of the header before the image bytes.</summary>
    public const int HeaderSize = 12;

    /// <summary>Possible guest base addresses: low memory, 1 GiB, straddling 4 GiB, and the very top of the address space.</summary>
    public static readonly ulong[] Bases = [0, 0x4000_0000, 0x1_0000_0000 - (ImageSize / 2), ulong.MaxValue - ImageSize + 1];

    /// <summary>The <c>max_data_size</c> values the parsers are called with.</summary>
    public static readonly uint[] MaxDataSizes = [64 * 1024, 4096, 1, 0, 44, 16 * 1024 * 1024, uint.MaxValue, 100];

    private QueueImage(GuestMemory memory, VirtQueue queue, ulong baseAddress, uint maxData, ushort availIndex)
    {
        Memory = memory;
        Queue = queue;
        Base = baseAddress;
        MaxData = maxData;
        AvailIndex = availIndex;
    }

    /// <summary>The guest memory.</summary>
    public GuestMemory Memory { get; }

    /// <summary>The configured queue.</summary>
    public VirtQueue Queue { get; }

    /// <summary>The guest address of image offset 0.</summary>
    public ulong Base { get; }

    /// <summary>The <c>max_data_size</c> the parsers get.</summary>
    public uint MaxData { get; }

    /// <summary>The driver's <c>avail.idx</c> as written into the image.</summary>
    public ushort AvailIndex { get; }

    /// <summary>Decodes the image from the input.</summary>
    /// <param name="input">The fuzz input (its remaining bytes are the image).</param>
    /// <returns>The image; dispose it.</returns>
    public static QueueImage Decode(ref FuzzReader input)
    {
        byte config = input.U8();
        byte layout = input.U8();
        ushort split1 = (ushort)(input.U16() % ImageSize);
        ushort split2 = (ushort)(input.U16() % ImageSize);
        ushort availIndex = input.U16();
        ushort nextAvail = input.U16();
        uint maxData = MaxDataSizes[input.U8() & 7];
        byte placement = input.U8();

        ushort size = (ushort)(1 << (config & 7));
        ulong baseAddress = Bases[layout & 3];
        int regionCount = 1 + (((layout >> 2) & 3) % 3);
        int holes = (layout >> 4) & 3;

        // Region boundaries as image offsets; a hole takes 64 bytes off the start of the next region.
        var bounds = new List<(int Start, int End)>(3);
        int[] cuts = regionCount switch
        {
            1 => [],
            2 => [Math.Max((int)split1, 1)],
            _ => [Math.Max((int)Math.Min(split1, split2), 1), Math.Max((int)Math.Max(split1, split2), 1)],
        };
        int start = 0;
        for (int i = 0; i <= cuts.Length; i++)
        {
            int end = i < cuts.Length ? cuts[i] : ImageSize;
            int regionStart = start;
            if (i > 0 && (holes & (1 << (i - 1))) != 0)
            {
                regionStart = Math.Min(start + 64, end);
            }

            if (end > regionStart)
            {
                bounds.Add((regionStart, end));
            }

            start = Math.Max(start, end);
        }

        var regions = new GuestRegion[bounds.Count];
        try
        {
            for (int i = 0; i < bounds.Count; i++)
            {
                regions[i] = GuestRegion.CreateAnonymous(new GuestAddress(baseAddress + (ulong)bounds[i].Start), (ulong)(bounds[i].End - bounds[i].Start));
            }

            GuestMemory memory = GuestMemory.Create(regions);

            // The image bytes, written wherever memory exists.
            byte[] image = new byte[ImageSize];
            input.Rest().CopyTo(image);
            uint descriptorOffset = (uint)((placement & 15) * 2048) % ImageSize;
            uint availOffset = descriptorOffset + (16u * size);
            uint usedOffset = (availOffset + 6 + (2u * size) + 3) & ~3u;
            if (availOffset + 4 <= ImageSize)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan((int)availOffset + 2), availIndex);
            }

            if ((config & 0x20) == 0)
            {
                for (uint i = 0; i < size && descriptorOffset + (16 * i) + 8 <= ImageSize; i++)
                {
                    Span<byte> address = image.AsSpan((int)(descriptorOffset + (16 * i)), 8);
                    BinaryPrimitives.WriteUInt64LittleEndian(address, BinaryPrimitives.ReadUInt64LittleEndian(address) + baseAddress);
                }
            }

            foreach ((int regionStart, int end) in bounds)
            {
                MemoryError written = memory.Write(new GuestAddress(baseAddress + (ulong)regionStart), image.AsSpan(regionStart, end - regionStart));
                FuzzInvariantException.Check(written == MemoryError.None, $"writing a region of fresh memory failed: {written}");
            }

            var queue = new VirtQueue(256)
            {
                Size = size,
                DescriptorTable = new GuestAddress(baseAddress + descriptorOffset),
                AvailRing = new GuestAddress(baseAddress + availOffset),
                UsedRing = new GuestAddress(baseAddress + usedOffset),
                IndirectDescriptors = (config & 0x08) != 0,
                EventIdx = (config & 0x10) != 0,
                NextAvail = nextAvail,
                NextUsed = nextAvail,
                Ready = true,
            };
            return new QueueImage(memory, queue, baseAddress, maxData, availIndex);
        }
        finally
        {
            // GuestMemory took its own reference on each region.
            foreach (GuestRegion? region in regions)
            {
                region?.Dispose();
            }
        }
    }

    /// <summary>Writes an image header (<see cref="Decode"/>'s layout); append the image bytes after it.</summary>
    /// <param name="writer">Where to write.</param>
    /// <param name="sizeLog2">Queue size as a power of two (0..7).</param>
    /// <param name="indirect">Negotiate INDIRECT_DESC.</param>
    /// <param name="eventIdx">Negotiate EVENT_IDX.</param>
    /// <param name="availIndex">The driver's <c>avail.idx</c>.</param>
    /// <param name="nextAvail">Where the device starts.</param>
    /// <param name="layout">The layout byte (base, regions, holes); 0 for one region at address 0.</param>
    /// <param name="split1">First region boundary.</param>
    /// <param name="split2">Second region boundary.</param>
    /// <param name="maxDataSelector">Index into <see cref="MaxDataSizes"/>.</param>
    public static void Encode(FuzzWriter writer, int sizeLog2, bool indirect, bool eventIdx, ushort availIndex, ushort nextAvail = 0, byte layout = 0, ushort split1 = 0, ushort split2 = 0, byte maxDataSelector = 0)
    {
        writer.U8((byte)((sizeLog2 & 7) | (indirect ? 0x08 : 0) | (eventIdx ? 0x10 : 0)))
            .U8(layout)
            .U16(split1)
            .U16(split2)
            .U16(availIndex)
            .U16(nextAvail)
            .U8(maxDataSelector)
            .U8(0);
    }

    /// <inheritdoc/>
    public void Dispose() => Memory.Dispose();
}
