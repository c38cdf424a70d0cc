using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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
/// </remarks>
public sealed unsafe class VsockPacket
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

    /// <summary>
    /// Parses the driver-to-device packet in a TX chain: a device-readable header of 44 bytes, then
    /// <c>len</c> bytes of payload in the same or the following device-readable buffers.
    /// </summary>
    /// <param name="memory">Guest memory.</param>
    /// <param name="chain">The chain, as popped; consumed to its end (descriptors after the payload are checked too).</param>
    /// <param name="maxDataSize">The largest payload accepted (typically 64 KiB).</param>
    /// <returns>The error, or <see cref="VsockPacketError.None"/>.</returns>
    public VsockPacketError TryParseTx(GuestMemory memory, ref DescriptorChain chain, uint maxDataSize)
    {
        Begin(memory, chain.HeadIndex);
        Span<byte> raw = stackalloc byte[VsockHeader.Size];
        VsockPacketError error = CollectHeader(memory, ref chain, writable: false, raw, out PacketSegment rest);
        if (error.IsError)
        {
            return error;
        }

        _header = VsockHeader.Read(raw);
        uint len = _header.Len;
        if (len == 0)
        {
            return ConsumeTxTail(ref chain);
        }

        if (len > maxDataSize)
        {
            return VsockPacketError.InvalidHeaderLen(len);
        }

        uint remaining = len;
        if (rest.Length != 0)
        {
            uint take = Math.Min(rest.Length, remaining);
            AddSegment(new PacketSegment(rest.Address, take));
            _dataSegments++;
            remaining -= take;
        }

        while (remaining != 0)
        {
            if (!chain.TryNext(out Descriptor descriptor, out QueueError queueError))
            {
                if (queueError != QueueError.None)
                {
                    return ChainError(queueError, descriptor, writable: false);
                }

                return _dataSegments == 0
                    ? VsockPacketError.Of(VsockPacketErrorKind.DescriptorChainTooShort)
                    : VsockPacketError.Of(VsockPacketErrorKind.DescriptorLengthTooSmall);
            }

            if (descriptor.IsWriteOnly)
            {
                return VsockPacketError.Of(VsockPacketErrorKind.UnexpectedWriteOnlyDescriptor);
            }

            if (descriptor.Length == 0)
            {
                continue;
            }

            uint piece = Math.Min(descriptor.Length, remaining);
            AddSegment(new PacketSegment(descriptor.Address.Value, piece));
            _dataSegments++;
            remaining -= piece;
        }

        _dataCapacity = len;
        return ConsumeTxTail(ref chain);
    }

    /// <summary>
    /// Walks the descriptors of a TX chain left after the packet: each must be device-readable and inside
    /// guest memory (<see cref="DescriptorChain.TryNext"/> checks that); their bytes are not part of the
    /// packet and are ignored, as bytes beyond <c>len</c> in a payload descriptor are. The chain ends consumed.
    /// </summary>
    private static VsockPacketError ConsumeTxTail(ref DescriptorChain chain)
    {
        while (true)
        {
            if (!chain.TryNext(out Descriptor descriptor, out QueueError queueError))
            {
                return queueError == QueueError.None ? VsockPacketError.None : ChainError(queueError, descriptor, writable: false);
            }

            if (descriptor.IsWriteOnly)
            {
                return VsockPacketError.Of(VsockPacketErrorKind.UnexpectedWriteOnlyDescriptor);
            }
        }
    }

    /// <summary>
    /// Prepares the device-writable buffers of an RX chain: the first 44 bytes for the header, the rest
    /// (at least one byte, at most <paramref name="maxDataSize"/>) for the payload. The header copy starts zeroed.
    /// </summary>
    /// <param name="memory">Guest memory.</param>
    /// <param name="chain">The chain, as popped; consumed.</param>
    /// <param name="maxDataSize">The largest data buffer accepted.</param>
    /// <returns>The error, or <see cref="VsockPacketError.None"/>.</returns>
    public VsockPacketError TryParseRx(GuestMemory memory, ref DescriptorChain chain, uint maxDataSize)
    {
        Begin(memory, chain.HeadIndex);
        Span<byte> unused = stackalloc byte[VsockHeader.Size];
        VsockPacketError error = CollectHeader(memory, ref chain, writable: true, unused, out PacketSegment rest);
        if (error.IsError)
        {
            return error;
        }

        ulong capacity = 0;
        if (rest.Length != 0)
        {
            AddSegment(rest);
            _dataSegments++;
            capacity = rest.Length;
        }

        while (true)
        {
            if (capacity > maxDataSize)
            {
                return VsockPacketError.Of(VsockPacketErrorKind.DescriptorLengthTooLong);
            }

            if (!chain.TryNext(out Descriptor descriptor, out QueueError queueError))
            {
                if (queueError != QueueError.None)
                {
                    return ChainError(queueError, descriptor, writable: true);
                }

                break;
            }

            if (!descriptor.IsWriteOnly)
            {
                return VsockPacketError.Of(VsockPacketErrorKind.UnexpectedReadOnlyDescriptor);
            }

            if (descriptor.Length == 0)
            {
                continue;
            }

            AddSegment(new PacketSegment(descriptor.Address.Value, descriptor.Length));
            _dataSegments++;
            capacity += descriptor.Length;
        }

        if (capacity == 0)
        {
            return VsockPacketError.Of(VsockPacketErrorKind.DescriptorChainTooShort);
        }

        _dataCapacity = (uint)capacity;
        return VsockPacketError.None;
    }

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

    /// <summary>Copies payload bytes <c>[offset, offset + destination.Length)</c> into <paramref name="destination"/>.</summary>
    /// <param name="destination">Where the bytes go; its length is the count.</param>
    /// <param name="offset">The first payload byte to copy.</param>
    /// <returns>The error (<see cref="VsockPacketErrorKind.DataOutOfRange"/> past the buffer), or none.</returns>
    public VsockPacketError CopyDataTo(Span<byte> destination, int offset = 0)
    {
        if (!InData(offset, destination.Length))
        {
            return VsockPacketError.Of(VsockPacketErrorKind.DataOutOfRange);
        }

        DataSpanEnumerator spans = GetDataSpans(offset, destination.Length);
        int done = 0;
        while (spans.MoveNext())
        {
            spans.Current.CopyTo(destination[done..]);
            done += spans.Current.Length;
        }

        return spans.Error;
    }

    /// <summary>Copies <paramref name="source"/> into the payload buffer at <paramref name="offset"/>.</summary>
    /// <param name="source">The bytes.</param>
    /// <param name="offset">The first payload byte to write.</param>
    /// <returns>The error (<see cref="VsockPacketErrorKind.DataOutOfRange"/> past the buffer), or none.</returns>
    public VsockPacketError CopyDataFrom(ReadOnlySpan<byte> source, int offset = 0)
    {
        if (!InData(offset, source.Length))
        {
            return VsockPacketError.Of(VsockPacketErrorKind.DataOutOfRange);
        }

        DataSpanEnumerator spans = GetDataSpans(offset, source.Length);
        int done = 0;
        while (spans.MoveNext())
        {
            source.Slice(done, spans.Current.Length).CopyTo(spans.Current);
            done += spans.Current.Length;
        }

        return spans.Error;
    }

    /// <summary>
    /// The payload buffer <c>[offset, offset + count)</c> as host spans, straight over guest memory. The spans
    /// must not be kept past the packet's use; a failure shows in <see cref="DataSpanEnumerator.Error"/>.
    /// </summary>
    /// <param name="offset">The first payload byte.</param>
    /// <param name="count">The number of bytes; clamped to the buffer.</param>
    /// <returns>An enumerator of spans.</returns>
    public DataSpanEnumerator GetDataSpans(int offset, int count)
    {
        if (offset < 0 || offset > _dataCapacity)
        {
            offset = (int)_dataCapacity;
        }

        count = Math.Clamp(count, 0, (int)_dataCapacity - offset);
        return _memory is null
            ? new DataSpanEnumerator(_hostData.Span.Slice(offset, count))
            : new DataSpanEnumerator(_memory, _segments.AsSpan(_headerSegments, _dataSegments), (uint)offset, (uint)count);
    }

    /// <summary>
    /// Sends payload bytes from <paramref name="offset"/> to the end of the payload on <paramref name="socket"/>,
    /// straight out of guest memory. Stops at the first partial send (a non-blocking socket that is full).
    /// </summary>
    /// <param name="socket">A connected socket, typically non-blocking.</param>
    /// <param name="offset">The first payload byte to send.</param>
    /// <param name="error">The socket error that stopped the send (<see cref="SocketError.Success"/> when all went or the socket took less).</param>
    /// <returns>The number of bytes sent.</returns>
    public int SendData(Socket socket, int offset, out SocketError error)
    {
        error = SocketError.Success;
        int sent = 0;
        DataSpanEnumerator spans = GetDataSpans(offset, int.MaxValue);
        while (spans.MoveNext())
        {
            int n = socket.Send(spans.Current, SocketFlags.None, out error);
            if (error != SocketError.Success)
            {
                return sent;
            }

            sent += n;
            if (n < spans.Current.Length)
            {
                return sent;
            }
        }

        return sent;
    }

    /// <summary>
    /// Receives up to <paramref name="maxBytes"/> from <paramref name="socket"/> straight into the payload buffer
    /// from <paramref name="offset"/> on. Stops at the first short receive; 0 with success means end of stream.
    /// </summary>
    /// <param name="socket">A connected socket, typically non-blocking.</param>
    /// <param name="offset">Where in the payload buffer to start.</param>
    /// <param name="maxBytes">The most bytes to receive.</param>
    /// <param name="error">The socket error that stopped the receive (<see cref="SocketError.WouldBlock"/> when nothing was ready).</param>
    /// <returns>The number of bytes received.</returns>
    public int ReceiveData(Socket socket, int offset, int maxBytes, out SocketError error)
    {
        error = SocketError.Success;
        int received = 0;
        DataSpanEnumerator spans = GetDataSpans(offset, maxBytes);
        while (spans.MoveNext())
        {
            int n = socket.Receive(spans.Current, SocketFlags.None, out error);
            if (error != SocketError.Success)
            {
                return received;
            }

            received += n;
            if (n < spans.Current.Length)
            {
                return received;
            }
        }

        return received;
    }

    /// <summary>Receives into the payload buffer from its start; see <see cref="ReceiveData(Socket, int, int, out SocketError)"/>.</summary>
    /// <param name="socket">A connected socket.</param>
    /// <param name="maxBytes">The most bytes to receive.</param>
    /// <param name="error">The socket error, if any.</param>
    /// <returns>The number of bytes received.</returns>
    public int ReceiveData(Socket socket, int maxBytes, out SocketError error) => ReceiveData(socket, 0, maxBytes, out error);

    /// <summary>Writes payload bytes <c>[offset, offset + count)</c> to <paramref name="stream"/> straight out of guest memory.</summary>
    /// <param name="stream">The stream.</param>
    /// <param name="offset">The first payload byte.</param>
    /// <param name="count">The number of bytes (clamped to the payload).</param>
    /// <returns>The number of bytes written.</returns>
    public int WriteDataTo(Stream stream, int offset, int count)
    {
        ArgumentNullException.ThrowIfNull(stream);
        int written = 0;
        DataSpanEnumerator spans = GetDataSpans(offset, count);
        while (spans.MoveNext())
        {
            stream.Write(spans.Current);
            written += spans.Current.Length;
        }

        return written;
    }

    /// <summary>
    /// Reads up to <paramref name="count"/> bytes from <paramref name="stream"/> straight into the payload buffer at
    /// <paramref name="offset"/>; stops at the first short read. 0 means end of stream.
    /// </summary>
    /// <param name="stream">The stream.</param>
    /// <param name="offset">Where in the payload buffer to start.</param>
    /// <param name="count">The most bytes to read.</param>
    /// <returns>The number of bytes read.</returns>
    public int ReadDataFrom(Stream stream, int offset, int count)
    {
        ArgumentNullException.ThrowIfNull(stream);
        int read = 0;
        DataSpanEnumerator spans = GetDataSpans(offset, count);
        while (spans.MoveNext())
        {
            int n = stream.Read(spans.Current);
            read += n;
            if (n < spans.Current.Length)
            {
                break;
            }
        }

        return read;
    }

    /// <inheritdoc/>
    public override string ToString() => $"head {HeadIndex}: {_header}";

    private bool InData(int offset, int count) => offset >= 0 && count >= 0 && (ulong)offset + (ulong)count <= _dataCapacity;

    private void Begin(GuestMemory memory, ushort headIndex)
    {
        _memory = memory;
        _hostHeader = default;
        _hostData = default;
        _headerSegments = 0;
        _dataSegments = 0;
        _dataCapacity = 0;
        _header = default;
        _headerHost = 0;
        HeadIndex = headIndex;
    }

    /// <summary>Gathers the 44 header bytes from the chain; <paramref name="rest"/> is what the last header descriptor holds beyond them.</summary>
    private VsockPacketError CollectHeader(GuestMemory memory, ref DescriptorChain chain, bool writable, Span<byte> raw, out PacketSegment rest)
    {
        rest = default;
        uint filled = 0;
        bool any = false;
        while (filled < VsockHeader.Size)
        {
            if (!chain.TryNext(out Descriptor descriptor, out QueueError queueError))
            {
                if (queueError != QueueError.None)
                {
                    return ChainError(queueError, descriptor, writable);
                }

                return any
                    ? VsockPacketError.Of(VsockPacketErrorKind.DescriptorLengthTooSmall)
                    : VsockPacketError.Of(VsockPacketErrorKind.DescriptorChainTooShort);
            }

            any = true;
            if (descriptor.IsWriteOnly != writable)
            {
                return VsockPacketError.Of(writable
                    ? VsockPacketErrorKind.UnexpectedReadOnlyDescriptor
                    : VsockPacketErrorKind.UnexpectedWriteOnlyDescriptor);
            }

            if (!descriptor.HasNext && filled + (ulong)descriptor.Length < VsockHeader.Size)
            {
                // The last buffer of the chain cannot complete the header: too small, whatever its address.
                return VsockPacketError.Of(VsockPacketErrorKind.DescriptorLengthTooSmall);
            }

            if (descriptor.Length == 0)
            {
                continue;
            }

            ulong address = descriptor.Address.Value;
            uint take = Math.Min(descriptor.Length, VsockHeader.Size - filled);
            if (take == VsockHeader.Size && memory.TryGetSpan(descriptor.Address, VsockHeader.Size, out Span<byte> whole) == MemoryError.None)
            {
                // The common case: the whole header in one piece of host memory. Remember where, so the
                // setters write it directly.
                if (!writable)
                {
                    whole.CopyTo(raw);
                }

                _headerHost = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(whole));
            }
            else if (!writable && memory.Read(descriptor.Address, raw.Slice((int)filled, (int)take)) != MemoryError.None)
            {
                return VsockPacketError.InvalidMemoryAccess(address);
            }

            AddSegment(new PacketSegment(address, take));
            _headerSegments++;
            filled += take;
            if (take < descriptor.Length)
            {
                rest = new PacketSegment(address + take, descriptor.Length - take);
            }
        }

        return VsockPacketError.None;
    }

    private static VsockPacketError ChainError(QueueError error, in Descriptor descriptor, bool writable) => error switch
    {
        QueueError.DescriptorOutsideMemory or QueueError.DescriptorAddressOverflow => VsockPacketError.InvalidMemoryAccess(descriptor.Address.Value),
        QueueError.ReadableAfterWritable when writable => VsockPacketError.Of(VsockPacketErrorKind.UnexpectedReadOnlyDescriptor),
        _ => VsockPacketError.InvalidChain(error),
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void AddSegment(PacketSegment segment)
    {
        int index = _headerSegments + _dataSegments;
        if (index == _segments.Length)
        {
            Array.Resize(ref _segments, _segments.Length * 2);
        }

        _segments[index] = segment;
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
