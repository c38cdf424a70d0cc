using System.Buffers.Binary;
using Virtio.Memory;
using Virtio.Queue;
using Virtio.Queue.Testing;
using Virtio.Vsock;
using Virtio.Vsock.Device;
using Virtio.Vsock.Device.Backends.InProcess;
using Virtio.Vsock.Testing;
using VirtioVsock.Fuzz.Engine;

namespace VirtioVsock.Fuzz.Targets;

/// <summary>
/// Runs the operations of a <c>device-tx</c> input against a simulator and device.
/// </summary>
/// <remarks>
/// <para>Each operation starts with an op byte; <c>op % 8</c> chooses it:</para>
/// <code>
/// 0-2 packet:  u8 sel; [u64 src_cid if sel&amp;1]; [u64 dst_cid if sel&amp;2]; ports (u32 u32 if sel&amp;4, else u8 u8:
///              guest 1000 + b%8, host 5000 + b%4); u16 type if sel&amp;8 else u8 (1 + b%2); u8 op (b % 9);
///              u32 flags if sel&amp;16 else 0; u32 buf_alloc, u32 fwd_cnt if sel&amp;32 else 64 KiB, 0;
///              u16 payload length (&amp; 0x1fff) and that many payload bytes; u32 len if sel&amp;64;
///              u8 layout: 0 linear, 1 header + data, 2 scattered (u8 piece size), 3 indirect,
///              4 split header, 5 zero-length descriptors, 6 trailing writable buffer, 7 extra readable bytes
/// 3    raw chain: u8 n (1 + n%8) buffers of u8 a: address (a&amp;3: 0 arena + u16, 1 u64, 2 arena end - u8,
///              3 memory base + u32), length (u32 if a&amp;4 else u16 % 4096), writable if a&amp;8, u8 count and
///              bytes written there if a&amp;16; through an indirect table if op&amp;0x80; then u8 c: c&amp;1 rewrites the
///              head descriptor's flags and next (u16 u16), c&amp;2 an indirect entry's (u8 index, u16, u16)
/// 4    host:   u8 s: accept what is pending, then on stream u8 % count: (s&gt;&gt;3)&amp;7 = 0 write u16 bytes,
///              1 read, 2 half-close, 3 close, 4 seqpacket message of u16 bytes, else read
/// 5    drain:  wait until every TX chain is back
/// 6    connect from the host to guest port 1000 + u8%8 (stream, or seqpacket if op&amp;0x80)
/// 7    guest:  u8 g: 0 toggle RX paused, 1 transport reset, 2 sleep 1 ms, 3 kick queue u8 % 4
/// </code>
/// </remarks>
internal sealed class DeviceTxProgram : IDisposable
{
    private const ulong ArenaSize = 1 << 20;
    private const ulong MemoryBase = 0x1000_0000;

    private readonly GuestSimulator _guest;
    private readonly VsockDevice _device;
    private readonly InProcessBackend _backend;
    private readonly List<VsockListener> _listeners = [];
    private readonly Task<VsockStream>?[] _accepts;
    private readonly List<VsockStream> _streams = [];
    private readonly List<Task<VsockStream>> _connects = [];
    private readonly List<Task> _hostOps = [];
    private readonly CancellationTokenSource _cancel = new();
    private readonly GuestAddress _arena;
    private readonly bool _trace = Environment.GetEnvironmentVariable("VSOCK_FUZZ_TRACE") == "1";
    private ulong _arenaUsed;

    public DeviceTxProgram(GuestSimulator guest, VsockDevice device, InProcessBackend backend)
    {
        _guest = guest;
        _device = device;
        _backend = backend;
        for (uint i = 0; i < 8; i++)
        {
            guest.ClaimRawPort(DeviceTxTarget.GuestPortBase + i);
        }

        for (uint i = 0; i < 4; i++)
        {
            _listeners.Add(backend.Listen(DeviceTxTarget.HostPortBase + i, VsockType.Stream));
        }

        for (uint i = 0; i < 2; i++)
        {
            _listeners.Add(backend.Listen(DeviceTxTarget.HostPortBase + i, VsockType.SeqPacket));
        }

        _accepts = new Task<VsockStream>?[_listeners.Count];
        GuestAddress arena = default;
        guest.PostRawTxChain((_, allocator) => arena = allocator.Allocate(ArenaSize, 64));
        _arena = arena;
    }

    public void Execute(ref FuzzReader input)
    {
        for (int ops = 0; ops < DeviceTxTarget.MaxOps && !input.IsEmpty; ops++)
        {
            byte op = input.U8();
            Trace($"op {ops}: 0x{op:x2} ({(op % 8) switch { < 3 => "packet", 3 => "raw chain", 4 => "host", 5 => "drain", 6 => "connect", _ => "guest" }})");
            switch (op % 8)
            {
                case 0:
                case 1:
                case 2:
                    Packet(ref input);
                    break;
                case 3:
                    RawChain(ref input, indirect: (op & 0x80) != 0);
                    break;
                case 4:
                    Host(ref input);
                    break;
                case 5:
                    Drain("on a drain operation");
                    break;
                case 6:
                    uint port = DeviceTxTarget.GuestPortBase + (uint)(input.U8() % 8);
                    _connects.Add(_backend.ConnectAsync(port, (op & 0x80) != 0 ? VsockType.SeqPacket : VsockType.Stream, _cancel.Token));
                    break;
                default:
                    Guest(ref input);
                    break;
            }
        }
    }

    /// <summary>Waits until every TX chain the guest posted is back (RX unpaused meanwhile, since TX may wait for RX).</summary>
    /// <param name="when">For the message.</param>
    public void Drain(string when)
    {
        bool paused = _guest.RxPaused;
        _guest.RxPaused = false;
        DateTime start = DateTime.UtcNow;
        DateTime lastProgress = start;
        int outstanding = _guest.OutstandingTxChains;
        var spin = default(SpinWait);
        while (outstanding != 0)
        {
            DateTime now = DateTime.UtcNow;
            if (now - lastProgress > DeviceTxTarget.DrainDeadline || now - start > DeviceTxTarget.DrainCap)
            {
                throw new FuzzInvariantException(
                    $"{outstanding} TX chains not back in the used ring, none returned for {(now - lastProgress).TotalSeconds:F1} s ({when}); " +
                    $"device: {_device.Metrics.TxInvalidChains} invalid TX chains, {_device.Metrics.TxQueueStalls} TX stalls, {_device.ConnectionCount} connections");
            }

            spin.SpinOnce(sleep1Threshold: 20);
            int now2 = _guest.OutstandingTxChains;
            if (now2 < outstanding)
            {
                lastProgress = DateTime.UtcNow;
            }

            outstanding = now2;
        }

        _guest.RxPaused = paused;
    }

    /// <summary>Cancels host operations and closes host streams and listeners.</summary>
    public void CloseHost()
    {
        _cancel.Cancel();
        foreach (VsockStream stream in _streams)
        {
            stream.Dispose();
        }

        foreach (VsockListener listener in _listeners)
        {
            listener.Dispose();
        }

        foreach (Task task in _hostOps.Concat(_connects).Concat(_accepts.OfType<Task>()))
        {
            // Host-side failures after a reset are expected; only the device's behaviour is under test.
            _ = task.ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
        }
    }

    public void Dispose() => _cancel.Dispose();

    private void Packet(ref FuzzReader input)
    {
        byte sel = input.U8();
        var header = new VsockHeader
        {
            SrcCid = (sel & 1) != 0 ? input.U64() : 3,
            DstCid = (sel & 2) != 0 ? input.U64() : VsockCid.Host,
        };
        if ((sel & 4) != 0)
        {
            header.SrcPort = input.U32();
            header.DstPort = input.U32();
        }
        else
        {
            header.SrcPort = DeviceTxTarget.GuestPortBase + (uint)(input.U8() % 8);
            header.DstPort = DeviceTxTarget.HostPortBase + (uint)(input.U8() % 4);
        }

        header.Type = (sel & 8) != 0 ? (VsockType)input.U16() : (VsockType)(1 + (input.U8() % 2));
        header.Op = (VsockOp)(input.U8() % 9);
        header.Flags = (sel & 16) != 0 ? input.U32() : 0;
        if ((sel & 32) != 0)
        {
            header.BufAlloc = input.U32();
            header.FwdCnt = input.U32();
        }
        else
        {
            header.BufAlloc = 64 * 1024;
        }

        int payloadLength = input.U16() & 0x1fff;
        byte[] payload = new byte[payloadLength];
        input.Bytes(payloadLength).CopyTo(payload);
        header.Len = (sel & 64) != 0 ? input.U32() : (uint)payloadLength;
        byte layout = input.U8();
        byte pieceSelector = (layout & 7) == 2 ? input.U8() : (byte)0;

        // Header and payload back to back (plus slack for the extra-bytes layout).
        int total = VsockHeader.Size + payloadLength;
        if (!TryTake((ulong)total + 64, out GuestAddress address))
        {
            return;
        }

        byte[] bytes = new byte[total + 64];
        header.Write(bytes);
        payload.CopyTo(bytes, VsockHeader.Size);
        _guest.Memory.Write(address, bytes).ThrowIfError(address);
        GuestAddress data = address.CheckedAdd(VsockHeader.Size);
        uint length = (uint)payloadLength;

        var buffers = new List<TestBuffer>();
        bool indirect = false;
        switch (layout & 7)
        {
            case 1 when length > 0:
                buffers.Add(TestBuffer.DeviceReadable(address, VsockHeader.Size));
                buffers.Add(TestBuffer.DeviceReadable(data, length));
                break;
            case 2 when length > 0:
                {
                    uint piece = 1u + pieceSelector;
                    buffers.Add(TestBuffer.DeviceReadable(address, VsockHeader.Size));
                    for (uint offset = 0; offset < length && buffers.Count < 16; offset += piece)
                    {
                        uint size = buffers.Count == 15 ? length - offset : Math.Min(piece, length - offset);
                        buffers.Add(TestBuffer.DeviceReadable(data.CheckedAdd(offset), size));
                    }

                    break;
                }

            case 3:
                indirect = true;
                buffers.Add(TestBuffer.DeviceReadable(address, VsockHeader.Size));
                if (length > 0)
                {
                    buffers.Add(TestBuffer.DeviceReadable(data, length));
                }

                break;
            case 4:
                buffers.Add(TestBuffer.DeviceReadable(address, 20));
                buffers.Add(TestBuffer.DeviceReadable(address.CheckedAdd(20), VsockHeader.Size - 20 + length));
                break;
            case 5:
                buffers.Add(TestBuffer.DeviceReadable(address, 0));
                buffers.Add(TestBuffer.DeviceReadable(address, VsockHeader.Size));
                buffers.Add(TestBuffer.DeviceReadable(data, 0));
                buffers.Add(TestBuffer.DeviceReadable(data, length));
                break;
            case 6:
                buffers.Add(TestBuffer.DeviceReadable(address, VsockHeader.Size + length));
                buffers.Add(TestBuffer.DeviceWritable(data.CheckedAdd(length), 16));
                break;
            case 7:
                buffers.Add(TestBuffer.DeviceReadable(address, VsockHeader.Size + length + 64));
                break;
            default:
                buffers.Add(TestBuffer.DeviceReadable(address, VsockHeader.Size + length));
                break;
        }

        Trace($"  {header} payload {payloadLength} layout {layout & 7}");
        Post(buffers, indirect, corrupt: null);
    }

    private void RawChain(ref FuzzReader input, bool indirect)
    {
        int count = 1 + (input.U8() % 8);
        var buffers = new List<TestBuffer>(count);
        for (int i = 0; i < count; i++)
        {
            byte a = input.U8();
            ulong address = (a & 3) switch
            {
                0 => _arena.Value + (input.U16() % ArenaSize),
                1 => input.U64(),
                2 => _arena.Value + ArenaSize - input.U8(),
                _ => MemoryBase + input.U32(),
            };
            uint length = (a & 4) != 0 ? input.U32() : (uint)(input.U16() % 4096);
            if ((a & 16) != 0)
            {
                ReadOnlySpan<byte> content = input.Bytes(input.U8());
                if (address >= _arena.Value && address - _arena.Value + (ulong)content.Length <= ArenaSize)
                {
                    _guest.Memory.Write(new GuestAddress(address), content).ThrowIfError(new GuestAddress(address));
                }
            }

            buffers.Add(new TestBuffer(new GuestAddress(address), length, (a & 8) != 0));
        }

        Trace($"  {string.Join(", ", buffers)}{(indirect ? " indirect" : string.Empty)}");
        byte corrupt = input.U8();
        (ushort Flags, ushort Next)? head = (corrupt & 1) != 0 ? (input.U16(), input.U16()) : null;
        (int Index, ushort Flags, ushort Next)? entry = (corrupt & 2) != 0 ? (input.U8() % count, input.U16(), input.U16()) : null;
        Post(buffers, indirect, (driver, headIndex, table) =>
        {
            if (head is { } h)
            {
                Descriptor current = driver.ReadDescriptor(headIndex);
                driver.WriteDescriptor(headIndex, current.Address, current.Length, (DescriptorFlags)h.Flags, h.Next);
            }

            if (entry is { } e && table is { } t)
            {
                TestBuffer buffer = buffers[e.Index];
                driver.WriteTableDescriptor(t, e.Index, buffer.Address, buffer.Length, (DescriptorFlags)e.Flags, e.Next);
            }
        });
    }

    /// <summary>Adds one chain through the TX driver (waiting for descriptors once if the ring is full).</summary>
    private void Post(List<TestBuffer> buffers, bool indirect, Action<TestDriver, ushort, GuestAddress?>? corrupt)
    {
        GuestAddress? table = null;
        if (indirect)
        {
            if (!TryTake((ulong)buffers.Count * 16, out GuestAddress tableAddress))
            {
                return;
            }

            table = tableAddress;
        }

        for (int attempt = 0; attempt < 2; attempt++)
        {
            bool added = false;
            _guest.PostRawTxChain((driver, _) =>
            {
                if (driver.FreeDescriptors < (indirect ? 1 : buffers.Count))
                {
                    return;
                }

                ushort head = indirect ? driver.AddIndirectChain(table!.Value, [.. buffers]) : driver.AddChain([.. buffers]);
                corrupt?.Invoke(driver, head, table);
                added = true;
            });
            if (added)
            {
                return;
            }

            Drain("waiting for free TX descriptors");
        }

        throw new FuzzInvariantException("no free TX descriptors even after every chain came back");
    }

    private void Host(ref FuzzReader input)
    {
        byte s = input.U8();
        for (int i = 0; i < _listeners.Count; i++)
        {
            while (true)
            {
                Task<VsockStream> accept = _accepts[i] ??= _listeners[i].AcceptAsync(_cancel.Token).AsTask();
                if (!accept.IsCompletedSuccessfully)
                {
                    break;
                }

                _streams.Add(accept.Result);
                _accepts[i] = null;
            }
        }

        for (int i = _connects.Count - 1; i >= 0; i--)
        {
            if (_connects[i].IsCompleted)
            {
                if (_connects[i].IsCompletedSuccessfully)
                {
                    _streams.Add(_connects[i].Result);
                }

                _connects.RemoveAt(i);
            }
        }

        if (_streams.Count == 0)
        {
            return;
        }

        VsockStream stream = _streams[input.U8() % _streams.Count];
        switch ((s >> 3) & 7)
        {
            case 0:
                _hostOps.Add(stream.WriteAsync(new byte[input.U16() % 16384], _cancel.Token).AsTask());
                break;
            case 2:
                stream.CompleteWrites();
                break;
            case 3:
                stream.Dispose();
                break;
            case 4:
                _hostOps.Add(stream.WriteMessageAsync(new byte[input.U16() % 16384], endOfRecord: (s & 1) != 0, _cancel.Token).AsTask());
                break;
            default:
                _hostOps.Add(stream.ReadAsync(new byte[4096], _cancel.Token).AsTask());
                break;
        }
    }

    private void Guest(ref FuzzReader input)
    {
        byte action = input.U8();
        Trace($"  guest action {action % 4} (rx paused {_guest.RxPaused})");
        switch (action % 4)
        {
            case 0:
                _guest.RxPaused = !_guest.RxPaused;
                break;
            case 1:
                _device.SendTransportReset();
                break;
            case 2:
                Thread.Sleep(1);
                break;
            default:
                _device.Kick(input.U8() % 4);
                break;
        }
    }

    private void Trace(string line)
    {
        if (_trace)
        {
            Console.Error.WriteLine($"[device-tx] {line}");
        }
    }

    private bool TryTake(ulong length, out GuestAddress address)
    {
        ulong aligned = (length + 15) & ~15UL;
        if (_arenaUsed + aligned > ArenaSize)
        {
            address = default;
            return false;
        }

        address = _arena.CheckedAdd(_arenaUsed);
        _arenaUsed += aligned;
        return true;
    }
}
