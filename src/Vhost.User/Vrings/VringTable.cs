using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using Virtio.Memory;

namespace Vhost.User;

/// <summary>
/// The vring state machine of one connection: per-queue size, base, addresses, enable flag and kick, call and err
/// descriptors (SET_VRING_*, GET_VRING_BASE), and the start and stop of each queue in the backend. A queue starts
/// on SET_VRING_KICK once its size, addresses and the memory table are known; its kick goes to the backend when
/// the backend takes it (<see cref="IVhostUserBackend.TryTakeKick"/>), otherwise to a <see cref="KickWaiter"/>
/// thread. Owns the <see cref="VringState"/>s (their call notifiers and kick threads). Touched by the control
/// thread only; must never let a kick thread outlive its queue's start (it is joined before StopQueue or Reset)
/// nor start a queue whose rings lie outside guest memory.
/// </summary>
internal sealed class VringTable : IDisposable
{
    /// <summary>The queue-index bits of a SET_VRING_KICK/CALL/ERR value.</summary>
    internal const ulong VringIndexMask = 0xff;

    /// <summary>The "no descriptor" flag of a SET_VRING_KICK/CALL/ERR value.</summary>
    internal const ulong VringNoFdFlag = 0x100;

    private readonly RequestContext _context;
    private readonly IVhostUserBackend _backend;
    private readonly MemoryTable _memory;
    private readonly ushort _maxQueueSize;
    private readonly VringState[] _vrings;

    /// <summary>Creates the state of <paramref name="queueCount"/> stopped queues.</summary>
    /// <param name="context">The connection's request context.</param>
    /// <param name="backend">The device.</param>
    /// <param name="memory">The memory table (ring addresses are translated and checked against it).</param>
    /// <param name="queueCount">The number of queues.</param>
    /// <param name="maxQueueSize">The largest queue size accepted.</param>
    internal VringTable(RequestContext context, IVhostUserBackend backend, MemoryTable memory, int queueCount, ushort maxQueueSize)
    {
        _context = context;
        _backend = backend;
        _memory = memory;
        _maxQueueSize = maxQueueSize;
        _vrings = new VringState[queueCount];
        for (int i = 0; i < _vrings.Length; i++)
        {
            _vrings[i] = new VringState();
        }
    }

    /// <summary>How many kick threads run (queues whose kick the backend did not take). For tests.</summary>
    internal int KickWaiterCount
    {
        get
        {
            int count = 0;
            foreach (VringState ring in _vrings)
            {
                count += ring.Kicker is null ? 0 : 1;
            }

            return count;
        }
    }

    /// <summary>Stops (joins) every kick thread, without telling the backend; call before <see cref="IVhostUserBackend.Reset"/>.</summary>
    internal void StopKickers()
    {
        foreach (VringState ring in _vrings)
        {
            ring.StopKicker();
        }
    }

    /// <summary>Forgets every queue's state (device reset); <see cref="StopKickers"/> and the backend's reset come first.</summary>
    internal void ClearAll()
    {
        foreach (VringState ring in _vrings)
        {
            ring.Clear();
        }
    }

    /// <summary>Stops every kick thread and closes every call descriptor (disconnect).</summary>
    public void Dispose()
    {
        foreach (VringState ring in _vrings)
        {
            ring.Dispose();
        }
    }

    internal bool HandleSetVringNum(ReadOnlySpan<byte> payload)
    {
        if (!TryReadState(payload, out int index, out uint num, out VringState? ring))
        {
            return false;
        }

        if (num == 0 || (num & (num - 1)) != 0 || num > _maxQueueSize)
        {
            return _context.Refuse($"queue {index} size {num} is not a power of two in 1..{_maxQueueSize}");
        }

        if (ring.Started)
        {
            return _context.Refuse($"queue {index} is running; its size cannot change");
        }

        ring.Size = (ushort)num;
        return true;
    }

    internal bool HandleSetVringBase(ReadOnlySpan<byte> payload)
    {
        if (!TryReadState(payload, out int index, out uint num, out VringState? ring))
        {
            return false;
        }

        if (num > ushort.MaxValue)
        {
            return _context.Refuse($"queue {index} base 0x{num:x} has reserved bits 16-31 set (split rings only)");
        }

        if (ring.Started)
        {
            return _context.Refuse($"queue {index} is running; its base cannot change");
        }

        ring.NextAvailableIndex = (ushort)num;
        return true;
    }

    internal bool HandleGetVringBase(ReadOnlySpan<byte> payload)
    {
        if (!TryReadState(payload, out int index, out _, out VringState? ring))
        {
            return false;
        }

        ring.StopKicker();
        ushort next = ring.NextAvailableIndex;
        if (ring.Started)
        {
            ring.Started = false;
            next = _backend.StopQueue(index);
        }

        ring.NextAvailableIndex = next;
        ring.EnableRequested = false;
        ring.Call.SetFd(null);
        Span<byte> reply = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(reply, (uint)index);
        BinaryPrimitives.WriteUInt32LittleEndian(reply[4..], next);
        return _context.Channel.SendReply(VhostUserRequest.GetVringBase, reply);
    }

    internal bool HandleSetVringEnable(ReadOnlySpan<byte> payload)
    {
        if (!TryReadState(payload, out int index, out uint num, out VringState? ring))
        {
            return false;
        }

        if (num > 1)
        {
            return _context.Refuse($"queue {index} enable value {num} is neither 0 nor 1");
        }

        bool enable = num == 1;
        ring.EnableRequested = enable;
        if (ring.Started)
        {
            _backend.SetQueueEnabled(index, enable);
        }

        return true;
    }

    internal bool HandleSetVringAddr(ReadOnlySpan<byte> payload)
    {
        if (!_context.ExpectSize(payload, 40) || !_context.ExpectNoFds())
        {
            return false;
        }

        uint index = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(payload[4..]);
        ulong descriptors = BinaryPrimitives.ReadUInt64LittleEndian(payload[8..]);
        ulong used = BinaryPrimitives.ReadUInt64LittleEndian(payload[16..]);
        ulong available = BinaryPrimitives.ReadUInt64LittleEndian(payload[24..]);
        if (!TryGetRing(index, out VringState? ring))
        {
            return false;
        }

        if (flags != 0)
        {
            return _context.Refuse($"queue {index} address flags 0x{flags:x}: dirty-page logging is not supported");
        }

        if (!_memory.TryTranslate(index, "descriptor table", descriptors, 16, out GuestAddress descriptorTable)
            || !_memory.TryTranslate(index, "available ring", available, 2, out GuestAddress availableRing)
            || !_memory.TryTranslate(index, "used ring", used, 4, out GuestAddress usedRing))
        {
            return false;
        }

        if (ring.Started)
        {
            if (ring.DescriptorTable == descriptorTable && ring.AvailableRing == availableRing && ring.UsedRing == usedRing)
            {
                return true;
            }

            return _context.Refuse($"queue {index} is running; its rings cannot move");
        }

        ring.DescriptorTable = descriptorTable;
        ring.AvailableRing = availableRing;
        ring.UsedRing = usedRing;
        ring.HasAddresses = true;
        return true;
    }

    internal bool HandleVringFd(VhostUserRequest request, ReadOnlySpan<byte> payload)
    {
        if (!_context.ExpectSize(payload, 8))
        {
            return false;
        }

        ulong value = BinaryPrimitives.ReadUInt64LittleEndian(payload);
        if ((value & ~(VringIndexMask | VringNoFdFlag)) != 0)
        {
            return _context.Refuse($"value 0x{value:x} has reserved bits set (only bits 0-8 are defined)");
        }

        bool noFd = (value & VringNoFdFlag) != 0;
        uint index = (uint)(value & VringIndexMask);
        if (!_context.ExpectFds(noFd ? 0 : 1) || !TryGetRing(index, out VringState? ring))
        {
            return false;
        }

        if (!noFd)
        {
            int fd = _context.Channel.Fds[0]!.Fd;
            if (!Descriptors.IsNotifier(fd, out string kind))
            {
                return _context.Refuse($"queue {index} descriptor is {kind}, not an eventfd or pipe");
            }

            if (request != VhostUserRequest.SetVringErr && !Descriptors.SetNonBlocking(fd))
            {
                return _context.Refuse($"queue {index} descriptor cannot be made non-blocking");
            }
        }

        switch (request)
        {
            case VhostUserRequest.SetVringCall:
                ring.Call.SetFd(noFd ? null : _context.Channel.TakeFd(0));
                if (ring.Started && !noFd)
                {
                    // A notification in flight while the frontend swapped descriptors may have gone to the old one
                    // after the frontend last looked at it (QEMU swaps to a "masked" eventfd while the guest masks
                    // the interrupt, and checks it once when switching back, without waiting for this message), or
                    // been dropped by the swap itself. One notification on the new descriptor covers both; a
                    // spurious one is harmless. libvhost-user does the same.
                    ring.Call.Notify();
                }

                return true;
            case VhostUserRequest.SetVringErr:
                // Errors are never signalled: the descriptor is accepted and closed.
                return true;
            default:
                if (noFd)
                {
                    return _context.Refuse($"queue {index} without a kick descriptor would need polling, which is not supported");
                }

                return ring.Started ? ReplaceKick(ring, (int)index) : StartRing(ring, (int)index);
        }
    }

    private bool ReplaceKick(VringState ring, int index)
    {
        ring.StopKicker();
        AttachKick(ring, index, _context.Channel.TakeFd(0));
        return true;
    }

    /// <summary>
    /// Gives the kick of a started queue to the backend (<see cref="IVhostUserBackend.TryTakeKick"/>) or, when it
    /// declines, to a new <see cref="KickWaiter"/> thread. Takes ownership of <paramref name="kick"/>: it is closed
    /// here if the backend throws or no kick thread can be made (the exception then propagates).
    /// </summary>
    private void AttachKick(VringState ring, int index, SafeFileDescriptor kick)
    {
        bool taken;
        try
        {
            taken = _backend.TryTakeKick(index, kick);
        }
        catch
        {
            kick.Dispose();
            throw;
        }

        if (taken)
        {
            Log.Trace(_context.Logger, $"queue {index}: the backend waits on the kick descriptor itself");
            return;
        }

        ring.Kicker = new KickWaiter(index, kick, _backend, _context.Logger);
    }

    private bool StartRing(VringState ring, int index)
    {
        if (ring.Size == 0)
        {
            return _context.Refuse($"queue {index} cannot start: no SET_VRING_NUM");
        }

        if (!ring.HasAddresses)
        {
            return _context.Refuse($"queue {index} cannot start: no SET_VRING_ADDR");
        }

        if (!_memory.HasMemory)
        {
            return _context.Refuse($"queue {index} cannot start: no memory table");
        }

        ulong size = ring.Size;
        if (!_memory.CheckRange(index, "descriptor table", ring.DescriptorTable, 16 * size)
            || !_memory.CheckRange(index, "available ring", ring.AvailableRing, 6 + (2 * size))
            || !_memory.CheckRange(index, "used ring", ring.UsedRing, 6 + (8 * size)))
        {
            return false;
        }

        var config = new VringConfig(ring.Size, ring.DescriptorTable, ring.AvailableRing, ring.UsedRing, ring.NextAvailableIndex);
        _backend.StartQueue(index, config, ring.Call);
        ring.Started = true;
        if (!_context.ProtocolFeaturesNegotiated || ring.EnableRequested)
        {
            _backend.SetQueueEnabled(index, true);
        }

        try
        {
            AttachKick(ring, index, _context.Channel.TakeFd(0));
        }
#pragma warning disable CA1031 // A kick the backend or the kernel cannot take refuses the start; the queue stops again.
        catch (Exception exception)
#pragma warning restore CA1031
        {
            ring.Started = false;
            ring.NextAvailableIndex = _backend.StopQueue(index);
            return _context.Refuse($"queue {index} cannot start: {exception.Message}");
        }

        return true;
    }

    private bool TryReadState(ReadOnlySpan<byte> payload, out int index, out uint num, [NotNullWhen(true)] out VringState? ring)
    {
        index = 0;
        num = 0;
        ring = null;
        if (!_context.ExpectSize(payload, 8) || !_context.ExpectNoFds())
        {
            return false;
        }

        uint rawIndex = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        num = BinaryPrimitives.ReadUInt32LittleEndian(payload[4..]);
        if (!TryGetRing(rawIndex, out ring))
        {
            return false;
        }

        index = (int)rawIndex;
        return true;
    }

    private bool TryGetRing(uint index, [NotNullWhen(true)] out VringState? ring)
    {
        if (index >= (uint)_vrings.Length)
        {
            ring = null;
            return _context.Refuse($"queue index {index} is out of range (the device has {_vrings.Length} queues)");
        }

        ring = _vrings[index];
        return true;
    }
}
