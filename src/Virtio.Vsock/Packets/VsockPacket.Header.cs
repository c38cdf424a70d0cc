using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using Virtio.Memory;
using Virtio.Queue;

namespace Virtio.Vsock;

/// <summary>
/// The header setters: each writes one field little-endian into the header buffer (guest memory, split or
/// not, or the host buffer) and into the private copy. They must never read the header back from guest
/// memory (the copy is the truth the device acts on) and never write outside the header's segments.
/// </summary>
public sealed unsafe partial class VsockPacket
{
    /// <summary>Sets the source CID (guest memory and copy).</summary>
    /// <param name="value">The value.</param>
    /// <returns>This packet, for chaining.</returns>
    public VsockPacket SetSrcCid(ulong value)
    {
        _header.SrcCid = value;
        return WriteU64(0, value);
    }

    /// <summary>Sets the destination CID (guest memory and copy).</summary>
    /// <param name="value">The value.</param>
    /// <returns>This packet, for chaining.</returns>
    public VsockPacket SetDstCid(ulong value)
    {
        _header.DstCid = value;
        return WriteU64(8, value);
    }

    /// <summary>Sets the source port (guest memory and copy).</summary>
    /// <param name="value">The value.</param>
    /// <returns>This packet, for chaining.</returns>
    public VsockPacket SetSrcPort(uint value)
    {
        _header.SrcPort = value;
        return WriteU32(16, value);
    }

    /// <summary>Sets the destination port (guest memory and copy).</summary>
    /// <param name="value">The value.</param>
    /// <returns>This packet, for chaining.</returns>
    public VsockPacket SetDstPort(uint value)
    {
        _header.DstPort = value;
        return WriteU32(20, value);
    }

    /// <summary>Sets the payload length (guest memory and copy).</summary>
    /// <param name="value">The value.</param>
    /// <returns>This packet, for chaining.</returns>
    public VsockPacket SetLen(uint value)
    {
        _header.Len = value;
        return WriteU32(24, value);
    }

    /// <summary>Sets the socket type (guest memory and copy).</summary>
    /// <param name="value">The value.</param>
    /// <returns>This packet, for chaining.</returns>
    public VsockPacket SetType(VsockType value)
    {
        _header.Type = value;
        return WriteU16(28, (ushort)value);
    }

    /// <summary>Sets the operation (guest memory and copy).</summary>
    /// <param name="value">The value.</param>
    /// <returns>This packet, for chaining.</returns>
    public VsockPacket SetOp(VsockOp value)
    {
        _header.Op = value;
        return WriteU16(30, (ushort)value);
    }

    /// <summary>Sets the flags (guest memory and copy).</summary>
    /// <param name="value">The value.</param>
    /// <returns>This packet, for chaining.</returns>
    public VsockPacket SetFlags(uint value)
    {
        _header.Flags = value;
        return WriteU32(32, value);
    }

    /// <summary>ORs one flag into the flags (guest memory and copy).</summary>
    /// <param name="flag">The flag bits to set.</param>
    /// <returns>This packet, for chaining.</returns>
    public VsockPacket SetFlag(uint flag) => SetFlags(_header.Flags | flag);

    /// <summary>Sets the buffer size (guest memory and copy).</summary>
    /// <param name="value">The value.</param>
    /// <returns>This packet, for chaining.</returns>
    public VsockPacket SetBufAlloc(uint value)
    {
        _header.BufAlloc = value;
        return WriteU32(36, value);
    }

    /// <summary>Sets the forward count (guest memory and copy).</summary>
    /// <param name="value">The value.</param>
    /// <returns>This packet, for chaining.</returns>
    public VsockPacket SetFwdCnt(uint value)
    {
        _header.FwdCnt = value;
        return WriteU32(40, value);
    }

    /// <summary>Writes a whole header at once (guest memory and copy).</summary>
    /// <param name="header">The header.</param>
    /// <returns>This packet, for chaining.</returns>
    public VsockPacket SetHeader(in VsockHeader header)
    {
        Span<byte> raw = stackalloc byte[VsockHeader.Size];
        header.Write(raw);
        _header = header;
        WriteHeaderBytes(0, raw);
        return this;
    }

    /// <summary>Writes a raw 44-byte header to the packet's header buffer and refreshes the copy from it.</summary>
    /// <param name="bytes">Exactly 44 bytes.</param>
    /// <returns>The error (<see cref="VsockPacketErrorKind.InvalidHeaderInputSize"/> for another size), or none.</returns>
    public VsockPacketError SetHeaderFromRaw(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != VsockHeader.Size)
        {
            return VsockPacketError.InvalidHeaderInputSize(bytes.Length);
        }

        VsockPacketError error = WriteHeaderBytes(0, bytes);
        if (!error.IsError)
        {
            _header = VsockHeader.Read(bytes);
        }

        return error;
    }

    private VsockPacket WriteU64(int offset, ulong value)
    {
        if (_headerHost != 0 && !_memory!.IsDisposed)
        {
            Unsafe.WriteUnaligned((byte*)_headerHost + offset, BitConverter.IsLittleEndian ? value : BinaryPrimitives.ReverseEndianness(value));
            return this;
        }

        Span<byte> bytes = stackalloc byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        WriteHeaderBytes(offset, bytes);
        return this;
    }

    private VsockPacket WriteU32(int offset, uint value)
    {
        if (_headerHost != 0 && !_memory!.IsDisposed)
        {
            Unsafe.WriteUnaligned((byte*)_headerHost + offset, BitConverter.IsLittleEndian ? value : BinaryPrimitives.ReverseEndianness(value));
            return this;
        }

        Span<byte> bytes = stackalloc byte[sizeof(uint)];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        WriteHeaderBytes(offset, bytes);
        return this;
    }

    private VsockPacket WriteU16(int offset, ushort value)
    {
        if (_headerHost != 0 && !_memory!.IsDisposed)
        {
            Unsafe.WriteUnaligned((byte*)_headerHost + offset, BitConverter.IsLittleEndian ? value : BinaryPrimitives.ReverseEndianness(value));
            return this;
        }

        Span<byte> bytes = stackalloc byte[sizeof(ushort)];
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, value);
        WriteHeaderBytes(offset, bytes);
        return this;
    }

    /// <summary>Writes bytes at a header offset, across header segments when the header is split.</summary>
    private VsockPacketError WriteHeaderBytes(int offset, ReadOnlySpan<byte> bytes)
    {
        if (_memory is null)
        {
            if (_hostHeader.Length == VsockHeader.Size)
            {
                bytes.CopyTo(_hostHeader.Span[offset..]);
            }

            return VsockPacketError.None;
        }

        if (_headerHost != 0 && !_memory.IsDisposed)
        {
            bytes.CopyTo(new Span<byte>((byte*)_headerHost + offset, bytes.Length));
            return VsockPacketError.None;
        }

        if (_headerSegments == 1)
        {
            // The header is one guest buffer that crosses a region boundary.
            ulong at = _segments[0].Address + (ulong)offset;
            return _memory.Write(new GuestAddress(at), bytes) == MemoryError.None
                ? VsockPacketError.None
                : VsockPacketError.InvalidMemoryAccess(at);
        }

        int skip = offset;
        for (int i = 0; i < _headerSegments && !bytes.IsEmpty; i++)
        {
            PacketSegment segment = _segments[i];
            if (skip >= segment.Length)
            {
                skip -= (int)segment.Length;
                continue;
            }

            int take = Math.Min((int)segment.Length - skip, bytes.Length);
            ulong at = segment.Address + (ulong)skip;
            if (_memory.Write(new GuestAddress(at), bytes[..take]) != MemoryError.None)
            {
                return VsockPacketError.InvalidMemoryAccess(at);
            }

            bytes = bytes[take..];
            skip = 0;
        }

        return VsockPacketError.None;
    }
}
