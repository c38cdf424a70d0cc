using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Virtio.Memory;
using Virtio.Queue;

namespace Virtio.Vsock;

/// <summary>
/// Parsing: walks a TX or RX descriptor chain once, checks every descriptor's direction and bounds, reads
/// the header into the private copy and records the header and payload buffers in the segment table.
/// It must never keep a reference into guest memory other than validated segments (and the header's host
/// address), never read or write payload bytes, and never allocate once the segment table has grown.
/// </summary>
public sealed unsafe partial class VsockPacket
{
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
}
