using System.Buffers.Binary;

namespace Virtio.Vsock.Device.Diagnostics.Capture;

/// <summary>
/// The bytes of pcap files with link type <c>LINKTYPE_VSOCK</c> (271): the file header, and per packet the pcap
/// record header followed by Linux's <c>struct af_vsockmon_hdr</c> (uapi <c>linux/vsockmon.h</c>: le64 src_cid,
/// le64 dst_cid, le32 src_port, le32 dst_port, le16 op, le16 transport, le16 len, u8 reserved[2]; 32 bytes) and
/// the 44-byte <c>virtio_vsock_hdr</c>, then the payload. Pure encoding; must never do I/O.
/// </summary>
public static class VsockMonRecord
{
    /// <summary>The pcap link type of vsockmon captures.</summary>
    public const uint LinkTypeVsock = 271;

    /// <summary>The size of the pcap file header.</summary>
    public const int FileHeaderSize = 24;

    /// <summary>The size of a pcap record header.</summary>
    public const int RecordHeaderSize = 16;

    /// <summary>The size of <c>struct af_vsockmon_hdr</c>.</summary>
    public const int MonitorHeaderSize = 32;

    /// <summary>The bytes before the payload in a record: pcap record header, vsockmon header, virtio header.</summary>
    public const int PrefixSize = RecordHeaderSize + MonitorHeaderSize + VsockHeader.Size;

    /// <summary><c>AF_VSOCK_TRANSPORT_VIRTIO</c>: the transport header is a <c>virtio_vsock_hdr</c>.</summary>
    public const ushort TransportVirtio = 2;

    /// <summary>Writes the pcap file header (microsecond timestamps, version 2.4, little-endian).</summary>
    /// <param name="destination">At least <see cref="FileHeaderSize"/> bytes.</param>
    /// <param name="snapLength">The largest record payload (vsockmon and virtio headers included).</param>
    public static void WriteFileHeader(Span<byte> destination, uint snapLength)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, 0xa1b2c3d4);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[4..], 2);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], 4);
        BinaryPrimitives.WriteInt32LittleEndian(destination[8..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[16..], snapLength);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[20..], LinkTypeVsock);
    }

    /// <summary>The <c>af_vsockmon_op</c> Linux records for a virtio op (as <c>virtio_transport_build_skb</c> maps it).</summary>
    /// <param name="op">The virtio op.</param>
    /// <returns>1 CONNECT (REQUEST, RESPONSE), 2 DISCONNECT (RST, SHUTDOWN), 3 CONTROL (credit), 4 PAYLOAD (RW), else 0.</returns>
    public static ushort MonitorOp(VsockOp op) => op switch
    {
        VsockOp.Request or VsockOp.Response => 1,
        VsockOp.Rst or VsockOp.Shutdown => 2,
        VsockOp.CreditUpdate or VsockOp.CreditRequest => 3,
        VsockOp.Rw => 4,
        _ => 0,
    };

    /// <summary>Writes the <see cref="PrefixSize"/> bytes before a record's payload.</summary>
    /// <param name="destination">At least <see cref="PrefixSize"/> bytes.</param>
    /// <param name="header">The packet's header.</param>
    /// <param name="capturedPayload">Payload bytes that follow in the record.</param>
    /// <param name="originalPayload">Payload bytes the packet had.</param>
    /// <param name="unixMicroseconds">The time, in microseconds since 1970.</param>
    public static void WritePrefix(Span<byte> destination, in VsockHeader header, int capturedPayload, uint originalPayload, long unixMicroseconds)
    {
        const int framing = MonitorHeaderSize + VsockHeader.Size;
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)(unixMicroseconds / 1_000_000));
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], (uint)(unixMicroseconds % 1_000_000));
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], (uint)(framing + capturedPayload));
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], (uint)Math.Min(uint.MaxValue, framing + (ulong)originalPayload));
        Span<byte> mon = destination.Slice(RecordHeaderSize, MonitorHeaderSize);
        BinaryPrimitives.WriteUInt64LittleEndian(mon, header.SrcCid);
        BinaryPrimitives.WriteUInt64LittleEndian(mon[8..], header.DstCid);
        BinaryPrimitives.WriteUInt32LittleEndian(mon[16..], header.SrcPort);
        BinaryPrimitives.WriteUInt32LittleEndian(mon[20..], header.DstPort);
        BinaryPrimitives.WriteUInt16LittleEndian(mon[24..], MonitorOp(header.Op));
        BinaryPrimitives.WriteUInt16LittleEndian(mon[26..], TransportVirtio);
        BinaryPrimitives.WriteUInt16LittleEndian(mon[28..], VsockHeader.Size);
        mon[30] = 0;
        mon[31] = 0;
        header.Write(destination.Slice(RecordHeaderSize + MonitorHeaderSize, VsockHeader.Size));
    }
}
