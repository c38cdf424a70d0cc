using Virtio.Memory;
using Virtio.Queue;

namespace Virtio.Vsock;

/// <summary>
/// A vsock packet: the 44-byte header and the optional payload, as they lie in the buffers of one
/// descriptor chain in guest memory (or in plain host buffers).
/// </summary>
/// <remarks>
/// <para><b>Parsing.</b> <see cref="TryParseTx"/> reads a driver-to-device packet out of the
/// device-readable buffers of a TX chain; <see cref="TryParseRx"/> prepares the device-writable buffers
/// of an RX chain for a device-to-driver packet. Both treat the chain's buffers as one byte stream: the
/// header is its first 44 bytes and the payload what follows, however the driver split them into
/// descriptors (one descriptor for both, as Linux 6.2+ sends; header and payload descriptors, as older
/// Linux sends; or any number, as Linux 6.17+ sends for large payloads), and across guest memory
/// regions. Every buffer is checked against guest memory while the chain is walked (by
/// <see cref="DescriptorChain.TryNext"/>); zero-length descriptors are skipped.</para>
/// <para><b>No time-of-check/time-of-use.</b> The header is read once into a private copy
/// (<see cref="Header"/>); every getter reads that copy, so a guest rewriting its buffer afterwards
/// changes nothing the device acts on. Setters write guest memory (little-endian) and the copy.</para>
/// <para><b>Hot path.</b> A <see cref="VsockPacket"/> is meant to be reused: parsing fills the same
/// object again, its segment table grows to the longest chain seen and is then reused, so steady-state
/// processing allocates nothing. Errors are <see cref="VsockPacketError"/> values; only
/// <see cref="FromTxVirtqChain"/>-style conveniences throw.</para>
/// <para><b>Lifetime.</b> The packet refers to guest memory and is valid while that
/// <see cref="GuestMemory"/> is; accesses after it was released fail with
/// <see cref="VsockPacketErrorKind.InvalidMemoryAccess"/> instead of touching unmapped memory.</para>
/// <para><b>Where it differs from rust-vmm's crate.</b> Any number of descriptors and regions; the same
/// <c>max_data_size</c> limit for every RX layout; a buffer outside guest memory is always
/// <see cref="VsockPacketErrorKind.InvalidMemoryAccess"/> naming its address; the chain is consumed
/// (parsing it again fails with <see cref="VsockPacketErrorKind.DescriptorChainTooShort"/>); TX payload
/// starts right after the header even when the head descriptor also has NEXT.</para>
/// <para><b>Files.</b> This file owns the state, the getters and the constructors; <c>VsockPacket.Parsing.cs</c>
/// walks chains into the segment table, <c>VsockPacket.Header.cs</c> holds the setters and
/// <c>VsockPacket.Data.cs</c> the payload copies and spans. No part of the packet does I/O: it copies to and
/// from spans and exposes its segments; sockets and streams belong to the device.</para>
/// </remarks>
public sealed partial class VsockPacket
{
    private const int InitialSegments = 8;

    private GuestMemory? _memory;
    private Memory<byte> _hostHeader;
    private Memory<byte> _hostData;
    private PacketSegment[] _segments = new PacketSegment[InitialSegments];
    private int _headerSegments;
    private int _dataSegments;
    private uint _dataCapacity;
    private VsockHeader _header;

    // Host address of the header when it lies in one piece of guest memory (0 otherwise): the setters
    // write there directly, after checking that the memory is still mapped.
    private nint _headerHost;

    /// <summary>Creates an empty packet, to be filled by <see cref="TryParseTx"/> or <see cref="TryParseRx"/>.</summary>
    public VsockPacket()
    {
    }

    /// <summary>The head index of the chain the packet was parsed from, for returning it to the used ring.</summary>
    public ushort HeadIndex { get; private set; }

    /// <summary>The private copy of the header.</summary>
    public VsockHeader Header => _header;

    /// <summary>Bytes of payload buffer: for TX the header's <c>len</c>; for RX the writable bytes after the header.</summary>
    public int DataCapacity => (int)_dataCapacity;

    /// <summary>Whether the header's <c>len</c> is 0 (no payload).</summary>
    public bool IsEmpty => _header.Len == 0;

    /// <summary>Source CID.</summary>
    public ulong SrcCid => _header.SrcCid;

    /// <summary>Destination CID.</summary>
    public ulong DstCid => _header.DstCid;

    /// <summary>Source port.</summary>
    public uint SrcPort => _header.SrcPort;

    /// <summary>Destination port.</summary>
    public uint DstPort => _header.DstPort;

    /// <summary>Payload length announced by the header.</summary>
    public uint Len => _header.Len;

    /// <summary>Socket type (may be outside <see cref="VsockType"/>).</summary>
    public VsockType Type => _header.Type;

    /// <summary>Operation (may be outside <see cref="VsockOp"/>).</summary>
    public VsockOp Op => _header.Op;

    /// <summary>Flags.</summary>
    public uint Flags => _header.Flags;

    /// <summary>The sender's buffer size.</summary>
    public uint BufAlloc => _header.BufAlloc;

    /// <summary>The sender's forward count.</summary>
    public uint FwdCnt => _header.FwdCnt;

    /// <summary>Parses a TX chain, throwing on error. For code at the edges; hot paths use <see cref="TryParseTx"/>.</summary>
    /// <param name="memory">Guest memory.</param>
    /// <param name="chain">The chain; consumed to its end.</param>
    /// <param name="maxDataSize">The largest payload accepted.</param>
    /// <returns>A new packet.</returns>
    /// <exception cref="VsockPacketException">The chain does not hold a valid packet.</exception>
    public static VsockPacket FromTxVirtqChain(GuestMemory memory, ref DescriptorChain chain, uint maxDataSize)
    {
        var packet = new VsockPacket();
        VsockPacketError error = packet.TryParseTx(memory, ref chain, maxDataSize);
        return error.IsError ? throw new VsockPacketException(error) : packet;
    }

    /// <summary>Parses an RX chain, throwing on error. For code at the edges; hot paths use <see cref="TryParseRx"/>.</summary>
    /// <param name="memory">Guest memory.</param>
    /// <param name="chain">The chain; consumed.</param>
    /// <param name="maxDataSize">The largest data buffer accepted.</param>
    /// <returns>A new packet.</returns>
    /// <exception cref="VsockPacketException">The chain cannot carry a packet.</exception>
    public static VsockPacket FromRxVirtqChain(GuestMemory memory, ref DescriptorChain chain, uint maxDataSize)
    {
        var packet = new VsockPacket();
        VsockPacketError error = packet.TryParseRx(memory, ref chain, maxDataSize);
        return error.IsError ? throw new VsockPacketException(error) : packet;
    }

    /// <summary>
    /// Builds a packet over plain host buffers: <paramref name="header"/> must be exactly 44 bytes and is
    /// decoded into the header copy; <paramref name="data"/> is the payload buffer (may be empty).
    /// </summary>
    /// <param name="header">Exactly 44 bytes.</param>
    /// <param name="data">The payload buffer.</param>
    /// <param name="packet">The packet, or <see langword="null"/> on error.</param>
    /// <returns>The error, or <see cref="VsockPacketError.None"/>.</returns>
    public static VsockPacketError TryFromBuffers(Memory<byte> header, Memory<byte> data, out VsockPacket? packet)
    {
        packet = null;
        if (header.Length != VsockHeader.Size)
        {
            return VsockPacketError.InvalidHeaderInputSize(header.Length);
        }

        packet = new VsockPacket
        {
            _hostHeader = header,
            _hostData = data,
            _dataCapacity = (uint)data.Length,
            _header = VsockHeader.Read(header.Span),
        };
        return VsockPacketError.None;
    }

    /// <summary>Builds a packet over plain host buffers, throwing when the header is not 44 bytes.</summary>
    /// <param name="header">Exactly 44 bytes.</param>
    /// <param name="data">The payload buffer.</param>
    /// <returns>The packet.</returns>
    /// <exception cref="VsockPacketException">The header buffer is not 44 bytes.</exception>
    public static VsockPacket FromBuffers(Memory<byte> header, Memory<byte> data)
    {
        VsockPacketError error = TryFromBuffers(header, data, out VsockPacket? packet);
        return error.IsError ? throw new VsockPacketException(error) : packet!;
    }

    /// <inheritdoc/>
    public override string ToString() => $"head {HeadIndex}: {_header}";
}
