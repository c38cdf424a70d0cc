using System.Runtime.InteropServices;
using Virtio.Memory;

namespace Virtio.Queue;

/// <summary>
/// The position of a chain reader or writer: the chain's cursor plus the unconsumed part of the current
/// descriptor, restricted to either the device-readable or the device-writable descriptors.
/// </summary>
/// <remarks>
/// Shared by <see cref="DescriptorChainReader"/> and <see cref="DescriptorChainWriter"/>. Hands out the
/// next contiguous host span of the current descriptor: the whole rest of it when it lies in one region
/// (the common case, one region lookup), else the piece up to the region boundary.
/// </remarks>
[StructLayout(LayoutKind.Auto)]
internal struct ChainCursor
{
    private DescriptorChain _chain;
    private readonly bool _writable;
    private GuestAddress _address;
    private uint _left;
    private int _lastSpan;
    private bool _ended;

    public ChainCursor(DescriptorChain chain, bool writable)
    {
        _chain = chain;
        _writable = writable;
        _address = default;
        _left = 0;
        _lastSpan = 0;
        _ended = false;
    }

    /// <summary>
    /// The next contiguous piece of the current descriptor, at most <paramref name="maxLength"/> bytes;
    /// empty at the end of the readable (or writable) part.
    /// </summary>
    public QueueError Next(int maxLength, out Span<byte> span)
    {
        span = default;
        _lastSpan = 0;
        while (_left == 0)
        {
            if (_ended)
            {
                return QueueError.None;
            }

            if (!_chain.TryNext(out Descriptor descriptor, out QueueError error))
            {
                _ended = true;
                return error;
            }

            if (descriptor.IsWriteOnly != _writable)
            {
                if (!_writable)
                {
                    // Writable descriptors come last: the readable part is over.
                    _ended = true;
                    return QueueError.None;
                }

                continue;
            }

            _address = descriptor.Address;
            _left = descriptor.Length;
        }

        GuestMemory memory = _chain.Memory!;
        int length = (int)Math.Min(Math.Min(_left, (uint)int.MaxValue), (uint)Math.Max(maxLength, 0));
        MemoryError memoryError = memory.TryGetSpan(_address, length, out span);
        if (memoryError == MemoryError.CrossesRegions)
        {
            memoryError = memory.TryGetSpans(_address, (ulong)length, out GuestSpanEnumerator spans);
            if (memoryError == MemoryError.None && spans.MoveNext())
            {
                span = spans.Current;
            }
        }

        if (memoryError != MemoryError.None)
        {
            span = default;
            _ended = true;
            _left = 0;
            return memoryError == MemoryError.Disposed ? QueueError.MemoryDisposed : QueueError.DescriptorOutsideMemory;
        }

        _lastSpan = span.Length;
        return QueueError.None;
    }

    /// <summary>Consumes <paramref name="count"/> bytes of the span last returned by <see cref="Next"/>.</summary>
    /// <returns><see langword="false"/> when <paramref name="count"/> is negative or beyond that span.</returns>
    public bool Advance(int count)
    {
        if (count < 0 || count > _lastSpan)
        {
            return false;
        }

        uint taken = (uint)count;
        _address = new GuestAddress(_address.Value + taken);
        _left -= taken;
        _lastSpan -= count;
        return true;
    }
}
