using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Virtio.Vsock;

/// <summary>
/// A copy of the 44-byte <c>struct virtio_vsock_hdr</c>, decoded into fields.
/// </summary>
/// <remarks>
/// The wire format is packed little-endian: src_cid le64 @0, dst_cid le64 @8, src_port le32 @16,
/// dst_port le32 @20, len le32 @24, type le16 @28, op le16 @30, flags le32 @32, buf_alloc le32 @36,
/// fwd_cnt le32 @40. A header read from guest memory is decoded once into this value, so later
/// changes the guest makes to its buffer cannot change what the device acts on. Field values are not
/// validated here: <see cref="Type"/> and <see cref="Op"/> may hold numbers outside their enums.
/// </remarks>
public record struct VsockHeader
{
    /// <summary>The size of the header on the wire: 44 bytes.</summary>
    public const int Size = 44;

    /// <summary>Source context id (upper 32 bits reserved).</summary>
    public ulong SrcCid { get; set; }

    /// <summary>Destination context id.</summary>
    public ulong DstCid { get; set; }

    /// <summary>Source port.</summary>
    public uint SrcPort { get; set; }

    /// <summary>Destination port.</summary>
    public uint DstPort { get; set; }

    /// <summary>Number of payload bytes that follow the header.</summary>
    public uint Len { get; set; }

    /// <summary>Socket type (may be a value outside <see cref="VsockType"/>: validate before use).</summary>
    public VsockType Type { get; set; }

    /// <summary>Operation (may be a value outside <see cref="VsockOp"/>: validate before use).</summary>
    public VsockOp Op { get; set; }

    /// <summary>Operation-specific flags (<see cref="ShutdownFlags"/>, <see cref="SeqPacketFlags"/>).</summary>
    public uint Flags { get; set; }

    /// <summary>The sender's receive buffer size for this connection.</summary>
    public uint BufAlloc { get; set; }

    /// <summary>Bytes the sender has consumed from its receive buffer (wrapping counter).</summary>
    public uint FwdCnt { get; set; }

    /// <summary>Decodes a header from exactly <see cref="Size"/> or more bytes (the first 44 are used).</summary>
    /// <param name="source">At least 44 bytes.</param>
    /// <returns>The header.</returns>
    /// <exception cref="ArgumentException">Fewer than 44 bytes.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static VsockHeader Read(ReadOnlySpan<byte> source)
    {
        if (source.Length < Size)
        {
            throw new ArgumentException($"A vsock header needs {Size} bytes, got {source.Length}.", nameof(source));
        }

        return new VsockHeader
        {
            SrcCid = BinaryPrimitives.ReadUInt64LittleEndian(source),
            DstCid = BinaryPrimitives.ReadUInt64LittleEndian(source[8..]),
            SrcPort = BinaryPrimitives.ReadUInt32LittleEndian(source[16..]),
            DstPort = BinaryPrimitives.ReadUInt32LittleEndian(source[20..]),
            Len = BinaryPrimitives.ReadUInt32LittleEndian(source[24..]),
            Type = (VsockType)BinaryPrimitives.ReadUInt16LittleEndian(source[28..]),
            Op = (VsockOp)BinaryPrimitives.ReadUInt16LittleEndian(source[30..]),
            Flags = BinaryPrimitives.ReadUInt32LittleEndian(source[32..]),
            BufAlloc = BinaryPrimitives.ReadUInt32LittleEndian(source[36..]),
            FwdCnt = BinaryPrimitives.ReadUInt32LittleEndian(source[40..]),
        };
    }

    /// <summary>Encodes the header into the first 44 bytes of <paramref name="destination"/>.</summary>
    /// <param name="destination">At least 44 bytes.</param>
    /// <exception cref="ArgumentException">Fewer than 44 bytes.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly void Write(Span<byte> destination)
    {
        if (destination.Length < Size)
        {
            throw new ArgumentException($"A vsock header needs {Size} bytes, got {destination.Length}.", nameof(destination));
        }

        BinaryPrimitives.WriteUInt64LittleEndian(destination, SrcCid);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], DstCid);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[16..], SrcPort);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[20..], DstPort);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[24..], Len);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[28..], (ushort)Type);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[30..], (ushort)Op);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[32..], Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[36..], BufAlloc);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[40..], FwdCnt);
    }

    /// <summary>A compact description for logs, e.g. <c>RW 3:1024 -> 2:1234 len 4096</c>.</summary>
    /// <returns>The description.</returns>
    public override readonly string ToString() =>
        $"{Op} {Type} {SrcCid}:{SrcPort} -> {DstCid}:{DstPort} len {Len} flags 0x{Flags:x} buf_alloc {BufAlloc} fwd_cnt {FwdCnt}";
}
