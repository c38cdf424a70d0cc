using Virtio.Memory;
using Virtio.Queue;
using Virtio.Queue.Testing;
using Virtio.Vsock.Device;

namespace Virtio.Vsock.Testing;

/// <summary>
/// The driver thread: takes used buffers from the RX, TX and EVENT queues, reposts RX and event buffers,
/// turns queued socket and raw packets into TX chains in the configured layout, and kicks the device.
/// It owns the buffer slots of the three queues; it must never block on the device (kicks only) and never
/// run outside <c>Sync</c>.
/// </summary>
public sealed partial class GuestSimulator
{
    private void Run()
    {
        while (!_stopping)
        {
            _wake.WaitOne();
            if (_stopping)
            {
                break;
            }

            lock (Sync)
            {
                for (int round = 0; round < 64; round++)
                {
                    bool progress = (!_txCompletionsPaused && ReapTx()) | (!_rxPaused && ReapRx()) | ReapEvents() | PumpTx();
                    if (!progress)
                    {
                        break;
                    }
                }
            }
        }
    }

    private bool ReapTx()
    {
        bool any = false;
        do
        {
            while (_txDriver.TryTakeUsed(out UsedElement element))
            {
                int slot = _txHeadToSlot[element.Id];
                if (slot >= 0)
                {
                    // Only chains the simulator built hold a buffer slot; raw chains hold none.
                    _freeTxSlots.Push(slot);
                    _txHeadToSlot[element.Id] = -1;
                }

                any = true;
            }
        }
        while (_txDriver.EnableInterrupts());

        return any;
    }

    private bool ReapEvents()
    {
        bool any = false;
        while (_eventDriver.TryTakeUsed(out UsedElement element))
        {
            any = true;
            if (element.Length >= 4)
            {
                OnTransportReset();
                Interlocked.Increment(ref _transportResets);
            }

            _eventDriver.AddChain(TestBuffer.DeviceWritable(_eventBuffers.CheckedAdd((ulong)(element.Id % 4) * 8), 8));
        }

        if (any)
        {
            PublishAndKick(_eventDriver, VsockQueueIndex.Event);
        }

        _eventDriver.EnableInterrupts();
        return any;
    }

    private bool ReapRx()
    {
        bool any = false;
        Span<byte> header = stackalloc byte[VsockHeader.Size];
        do
        {
            while (_rxDriver.TryTakeUsed(out UsedElement element))
            {
                any = true;
                int slot = _rxHeadToSlot[element.Id];
                GuestAddress address = _rxSlots[slot];
                if (element.Length >= VsockHeader.Size && element.Length <= VsockHeader.Size + Options.RxBufferSize)
                {
                    _memory.Read(address, header);
                    VsockHeader parsed = VsockHeader.Read(header);
                    int payloadLength = (int)element.Length - VsockHeader.Size;
                    if (parsed.Len != payloadLength)
                    {
                        RxLengthMismatches++;
                    }
                    else
                    {
                        Span<byte> payload = _scratch.AsSpan(0, payloadLength);
                        _memory.Read(address.CheckedAdd(VsockHeader.Size), payload);
                        Dispatch(parsed, payload);
                    }
                }
                else if (element.Length != 0)
                {
                    RxLengthMismatches++;
                }

                PostRx(slot);
            }

            if (any)
            {
                PublishAndKick(_rxDriver, VsockQueueIndex.Rx);
            }
        }
        while (_rxDriver.EnableInterrupts());

        return any;
    }

    private void PostRx(int slot)
    {
        GuestAddress address = _rxSlots[slot];
        ushort head = _rxDescriptorsPerChain == 1
            ? _rxDriver.AddChain(TestBuffer.DeviceWritable(address, (uint)(VsockHeader.Size + Options.RxBufferSize)))
            : _rxDriver.AddChain(
                TestBuffer.DeviceWritable(address, VsockHeader.Size),
                TestBuffer.DeviceWritable(address.CheckedAdd(VsockHeader.Size), (uint)Options.RxBufferSize));
        _rxHeadToSlot[head] = slot;
    }

    private bool PumpTx()
    {
        bool any = false;
        int budget = _txQueue.Count;
        Span<byte> headerBytes = stackalloc byte[VsockHeader.Size];
        while (_freeTxSlots.Count > 0 && _txDriver.FreeDescriptors >= 18)
        {
            int slot = _freeTxSlots.Peek();
            GuestAddress address = _txSlots[slot];
            VsockHeader header;
            int length;
            if (_rawQueue.TryDequeue(out var raw))
            {
                header = raw.Header;
                length = raw.Payload.Length;
                _memory.Write(address.CheckedAdd(VsockHeader.Size), raw.Payload);
            }
            else if (budget > 0 && _txQueue.TryDequeue(out GuestSocket? socket))
            {
                budget--;
                socket.InTxQueue = false;
                Span<byte> payload = _scratch.AsSpan(0, Options.MaxTxPayload);
                if (!socket.TryBuildPacket(payload, out header, out length))
                {
                    continue;
                }

                if (length > 0)
                {
                    _memory.Write(address.CheckedAdd(VsockHeader.Size), payload[..length]);
                }

                if (socket.HasTxWork() && !socket.InTxQueue)
                {
                    socket.InTxQueue = true;
                    _txQueue.Enqueue(socket);
                    budget++;
                }
            }
            else
            {
                break;
            }

            header.Write(headerBytes);
            _memory.Write(address, headerBytes);
            _freeTxSlots.Pop();
            _txHeadToSlot[AddTxChain(slot, address, length)] = slot;
            any = true;
        }

        if (any)
        {
            PublishAndKick(_txDriver, VsockQueueIndex.Tx);
        }

        return any;
    }

    private ushort AddTxChain(int slot, GuestAddress address, int length)
    {
        GuestAddress data = address.CheckedAdd(VsockHeader.Size);
        switch (Options.TxLayout)
        {
            case GuestBufferLayout.HeaderAndData when length > 0:
                return _txDriver.AddChain(TestBuffer.DeviceReadable(address, VsockHeader.Size), TestBuffer.DeviceReadable(data, (uint)length));
            case GuestBufferLayout.Indirect when length > 0:
                return _txDriver.AddIndirectChain(_txTables[slot], TestBuffer.DeviceReadable(address, VsockHeader.Size), TestBuffer.DeviceReadable(data, (uint)length));
            case GuestBufferLayout.Scattered when length > 0:
                {
                    int pieces = Math.Min(16, (length + 4095) / 4096);
                    Span<TestBuffer> buffers = stackalloc TestBuffer[17];
                    buffers[0] = TestBuffer.DeviceReadable(address, VsockHeader.Size);
                    int offset = 0;
                    for (int i = 0; i < pieces; i++)
                    {
                        int piece = i == pieces - 1 ? length - offset : 4096;
                        buffers[i + 1] = TestBuffer.DeviceReadable(data.CheckedAdd((ulong)offset), (uint)piece);
                        offset += piece;
                    }

                    return _txDriver.AddChain(buffers[..(pieces + 1)]);
                }

            default:
                return _txDriver.AddChain(TestBuffer.DeviceReadable(address, (uint)(VsockHeader.Size + length)));
        }
    }
}
