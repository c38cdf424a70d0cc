using System.Buffers.Binary;
using Virtio.Queue;
using Virtio.Vsock;
using VirtioVsock.Fuzz.Engine;
using VirtioVsock.Fuzz.Targets;

namespace VirtioVsock.Fuzz.Corpus;

/// <summary>Builds <c>packet-tx</c> / <c>packet-rx</c> seeds: a queue image with real chains, as a Linux driver lays them out.</summary>
internal sealed class ImageBuilder
{
    /// <summary>Where buffers start in the image (after the rings of any queue size used).</summary>
    public const int DataStart = 8192;

    private readonly byte[] _image = new byte[QueueImage.ImageSize];
    private readonly int _sizeLog2;
    private readonly ushort _size;
    private readonly ushort _nextAvail;
    private ushort _posted;
    private int _dataUsed = DataStart;

    public ImageBuilder(int sizeLog2, ushort nextAvail = 0)
    {
        _sizeLog2 = sizeLog2;
        _size = (ushort)(1 << sizeLog2);
        _nextAvail = nextAvail;
    }

    /// <summary>Reserves <paramref name="length"/> bytes of buffer space (16-byte aligned) and fills it.</summary>
    public int Buffer(ReadOnlySpan<byte> content, int length)
    {
        int offset = _dataUsed;
        content.CopyTo(_image.AsSpan(offset, Math.Min(content.Length, length)));
        _dataUsed += (length + 15) & ~15;
        return offset;
    }

    /// <summary>A TX packet's bytes (header with <c>len</c> = payload length, then the payload) in one buffer.</summary>
    public int Packet(VsockHeader header, ReadOnlySpan<byte> payload)
    {
        header.Len = (uint)payload.Length;
        byte[] bytes = new byte[VsockHeader.Size + payload.Length];
        header.Write(bytes);
        payload.CopyTo(bytes.AsSpan(VsockHeader.Size));
        return Buffer(bytes, bytes.Length);
    }

    /// <summary>Writes descriptor <paramref name="index"/> of the queue's table (addresses are image offsets).</summary>
    public ImageBuilder Descriptor(int index, long address, uint length, DescriptorFlags flags = DescriptorFlags.None, ushort next = 0)
    {
        WriteDescriptor(16 * index, address, length, flags, next);
        return this;
    }

    /// <summary>Writes entry <paramref name="index"/> of an indirect table at image offset <paramref name="table"/> (absolute addresses: use base 0).</summary>
    public ImageBuilder TableEntry(int table, int index, long address, uint length, DescriptorFlags flags = DescriptorFlags.None, ushort next = 0)
    {
        WriteDescriptor(table + (16 * index), address, length, flags, next);
        return this;
    }

    /// <summary>Makes <paramref name="head"/> available (the next ring entry).</summary>
    public ImageBuilder Avail(ushort head)
    {
        int availOffset = 16 * _size;
        int slot = (ushort)(_nextAvail + _posted) % _size;
        BinaryPrimitives.WriteUInt16LittleEndian(_image.AsSpan(availOffset + 4 + (2 * slot)), head);
        _posted++;
        return this;
    }

    /// <summary>The seed: header, then the image up to its last non-zero byte.</summary>
    public byte[] Build(bool indirect = true, bool eventIdx = true, byte layout = 0, ushort split1 = 0, ushort split2 = 0, byte maxDataSelector = 0)
    {
        var writer = new FuzzWriter();
        QueueImage.Encode(writer, _sizeLog2, indirect, eventIdx, (ushort)(_nextAvail + _posted), _nextAvail, layout, split1, split2, maxDataSelector);
        int end = _image.Length;
        while (end > 0 && _image[end - 1] == 0)
        {
            end--;
        }

        writer.Bytes(_image.AsSpan(0, end));
        return writer.ToArray();
    }

    private void WriteDescriptor(int offset, long address, uint length, DescriptorFlags flags, ushort next)
    {
        Span<byte> raw = _image.AsSpan(offset, 16);
        BinaryPrimitives.WriteInt64LittleEndian(raw, address);
        BinaryPrimitives.WriteUInt32LittleEndian(raw[8..], length);
        BinaryPrimitives.WriteUInt16LittleEndian(raw[12..], (ushort)flags);
        BinaryPrimitives.WriteUInt16LittleEndian(raw[14..], next);
    }
}
