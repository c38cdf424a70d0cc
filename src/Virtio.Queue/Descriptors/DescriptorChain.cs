using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Virtio.Memory;

namespace Virtio.Queue;

/// <summary>
/// A descriptor chain popped from the available ring: its head index and a cursor that walks its
/// descriptors, direct and indirect, checking every rule a hostile driver could break.
/// </summary>
/// <remarks>
/// <para><b>Design.</b> A small value type: a reference to the queue's binding (guest memory, mapped
/// descriptor table, queue size, region hint; made once per configuration and memory), whether indirect
/// descriptors were negotiated, and the cursor. Popping and walking a chain never allocates, and returning
/// it by value stays cheap (its size matters: it is copied once per pop). Copying the struct copies the cursor, so a copy can be walked independently.</para>
/// <para><b>Rules.</b> <see cref="TryNext"/> reads each descriptor once into a <see cref="Descriptor"/>
/// snapshot and checks the snapshot: head and <c>next</c> indices below the queue size (or the indirect
/// table size); at most as many buffer descriptors as the queue size, indirect entries included (more means
/// a loop; the INDIRECT descriptor itself describes no buffer and is not counted); INDIRECT only when
/// negotiated, never with NEXT, never inside an indirect table, with a table length that is a non-zero
/// multiple of 16 of at most 32768 entries lying inside guest memory; device-readable descriptors before
/// device-writable ones; <c>addr + len</c> without 64-bit overflow; each buffer inside guest memory (a
/// buffer may span adjacent regions). Zero-length buffers are returned; callers may skip them.</para>
/// <para><b>Errors.</b> The first broken rule ends the walk: <see cref="TryNext"/> returns
/// <see langword="false"/> with the error, and keeps returning it. The caller still knows
/// <see cref="HeadIndex"/>, so it can return the chain to the used ring (usually with length 0).</para>
/// <para><b>Limits.</b> Every call to <see cref="TryNext"/> reads at most two descriptors, and a chain ends
/// after at most queue-size buffer descriptors, so a walk is bounded whatever the guest writes. The guest
/// may rewrite descriptors while the device walks them; each snapshot is checked, so that changes the
/// data but never the safety. The default value is an empty chain.</para>
/// </remarks>
[StructLayout(LayoutKind.Auto)]
public struct DescriptorChain
{
    private const uint MaxIndirectEntries = SplitRing.MaxQueueSize;
    private const uint DescriptorSize = Descriptor.SizeInBytes;

    private readonly QueueBinding? _binding;
    private GuestArea _indirect;
    private readonly ushort _headIndex;
    private readonly bool _indirectAllowed;
    private bool _inIndirect;
    private bool _sawWritable;
    private bool _done;
    private uint _nextIndex;
    private uint _indirectEntries;
    private uint _count;
    private QueueError _error;

    internal DescriptorChain(QueueBinding binding, ushort headIndex, bool indirectAllowed)
    {
        _binding = binding;
        _headIndex = headIndex;
        _indirectAllowed = indirectAllowed;
        _nextIndex = headIndex;
    }

    /// <summary>The index of the chain's first descriptor: what goes back into the used ring.</summary>
    public readonly ushort HeadIndex => _headIndex;

    /// <summary>The error that ended the walk, or <see cref="QueueError.None"/>.</summary>
    public readonly QueueError Error => _error;

    /// <summary>The number of buffer descriptors returned so far.</summary>
    public readonly int Count => (int)_count;

    /// <summary>Moves to the next buffer descriptor of the chain.</summary>
    /// <param name="descriptor">The descriptor (an indirect table is entered transparently); on a buffer-range or
    /// readable-after-writable error, the offending descriptor (so callers can name its address); else default.</param>
    /// <param name="error">Why the walk stopped, or <see cref="QueueError.None"/> at the regular end.</param>
    /// <returns><see langword="true"/> with a checked descriptor; <see langword="false"/> at the end or on error.</returns>
    public bool TryNext(out Descriptor descriptor, out QueueError error)
    {
        descriptor = default;
        QueueBinding? binding = _binding;
        if (_done || binding is null)
        {
            error = _error;
            return false;
        }

        GuestMemory memory = binding.Memory;
        if (memory.IsDisposed)
        {
            return Fail(QueueError.MemoryDisposed, out error);
        }

        Descriptor current;
        if (_inIndirect)
        {
            if (_nextIndex >= _indirectEntries)
            {
                return Fail(QueueError.NextIndexOutOfRange, out error);
            }

            if (_indirect.ReadDescriptor(memory, _nextIndex * DescriptorSize, out current) != MemoryError.None)
            {
                return Fail(QueueError.DescriptorOutsideMemory, out error);
            }

            if (current.IsIndirect)
            {
                return Fail(QueueError.NestedIndirect, out error);
            }
        }
        else
        {
            if (_nextIndex >= binding.QueueSize)
            {
                return Fail(_count == 0 ? QueueError.HeadIndexOutOfRange : QueueError.NextIndexOutOfRange, out error);
            }

            if (binding.Descriptors.ReadDescriptor(memory, _nextIndex * DescriptorSize, out current) != MemoryError.None)
            {
                return Fail(QueueError.RingOutsideMemory, out error);
            }

            if (current.IsIndirect)
            {
                QueueError entered = EnterIndirect(binding, current);
                if (entered != QueueError.None)
                {
                    return Fail(entered, out error);
                }

                if (_indirect.ReadDescriptor(memory, 0, out current) != MemoryError.None)
                {
                    return Fail(QueueError.DescriptorOutsideMemory, out error);
                }

                if (current.IsIndirect)
                {
                    return Fail(QueueError.NestedIndirect, out error);
                }
            }
        }

        if (++_count > binding.QueueSize)
        {
            return Fail(QueueError.ChainTooLong, out error);
        }

        if (current.IsWriteOnly)
        {
            _sawWritable = true;
        }
        else if (_sawWritable)
        {
            descriptor = current;
            return Fail(QueueError.ReadableAfterWritable, out error);
        }

        QueueError range = CheckBuffer(binding, current.Address, current.Length);
        if (range != QueueError.None)
        {
            // Hand the offending descriptor out, so the caller can name the bad address.
            descriptor = current;
            return Fail(range, out error);
        }

        if (current.HasNext)
        {
            _nextIndex = current.Next;
        }
        else
        {
            _done = true;
        }

        descriptor = current;
        error = QueueError.None;
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static QueueError CheckBuffer(QueueBinding binding, GuestAddress address, uint length) =>
        length == 0 || binding.Hint.Contains(address.Value, length) ? QueueError.None : CheckBufferSlow(binding.Memory, address, length);

    private static QueueError CheckBufferSlow(GuestMemory memory, GuestAddress address, uint length)
    {

        if (address.Value + (length - 1) < address.Value)
        {
            return QueueError.DescriptorAddressOverflow;
        }

        return memory.CheckRange(address, length) == MemoryError.None ? QueueError.None : QueueError.DescriptorOutsideMemory;
    }

    private QueueError EnterIndirect(QueueBinding binding, Descriptor table)
    {
        if (!_indirectAllowed)
        {
            return QueueError.IndirectNotNegotiated;
        }

        if (table.HasNext)
        {
            return QueueError.IndirectWithNext;
        }

        uint length = table.Length;
        if (length == 0 || length % DescriptorSize != 0 || length / DescriptorSize > MaxIndirectEntries)
        {
            return QueueError.InvalidIndirectLength;
        }

        QueueError range = CheckBuffer(binding, table.Address, length);
        if (range != QueueError.None)
        {
            return range;
        }

        if (GuestArea.Map(binding.Memory, table.Address, length, 1, out _indirect) != MemoryError.None)
        {
            return QueueError.DescriptorOutsideMemory;
        }

        _inIndirect = true;
        _indirectEntries = length / DescriptorSize;
        _nextIndex = 0;
        return QueueError.None;
    }

    private bool Fail(QueueError error, out QueueError result)
    {
        _error = error;
        _done = true;
        result = error;
        return false;
    }
}
