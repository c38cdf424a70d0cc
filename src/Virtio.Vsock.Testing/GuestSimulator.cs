using System.Collections.Concurrent;
using Virtio.Memory;
using Virtio.Queue;
using Virtio.Queue.Testing;
using Virtio.Vsock.Device;

namespace Virtio.Vsock.Testing;

/// <summary>
/// An in-process guest: guest memory, the driver side of the device's three queues (through
/// <see cref="TestDriver"/>) and a socket layer that behaves like Linux's virtio_vsock driver, so whole
/// conversations run against a <see cref="VsockDevice"/> without a VM.
/// </summary>
/// <remarks>
/// <para>Create it, create the device with the simulator as its <see cref="IVsockDeviceNotifier"/>, then call
/// <see cref="Attach"/> (or use <see cref="Create"/>). A driver thread handles used buffers and sends packets;
/// the socket API (<see cref="ConnectAsync"/>, <see cref="Listen"/>, <see cref="GuestSocket"/>) is thread-safe.</para>
/// <para>RX buffers are <see cref="GuestSimulatorOptions.RxBufferSize"/> (4096) bytes of payload after the 44-byte
/// header, in one descriptor or two; TX packets use <see cref="GuestSimulatorOptions.TxLayout"/>.</para>
/// </remarks>
public sealed partial class GuestSimulator : IVsockDeviceNotifier, IDisposable
{
    private const ulong MemoryBase = 0x1000_0000;
    private const int MaxLog = 100_000;

    private readonly GuestMemory _memory;
    private readonly GuestAllocator _allocator;
    private readonly TestDriver _rxDriver;
    private readonly TestDriver _txDriver;
    private readonly TestDriver _eventDriver;
    private readonly QueueLayout[] _layouts;
    private readonly GuestAddress[] _rxSlots;
    private readonly int[] _rxHeadToSlot;
    private readonly GuestAddress[] _txSlots;
    private readonly GuestAddress[] _txTables;
    private readonly Stack<int> _freeTxSlots = new();
    private readonly int[] _txHeadToSlot;
    private readonly GuestAddress _eventBuffers;
    private readonly Dictionary<(uint Local, ulong PeerCid, uint Peer), GuestSocket> _sockets = [];
    private readonly Dictionary<(uint Port, VsockType Type), GuestListener> _listeners = [];
    private readonly Queue<GuestSocket> _txQueue = new();
    private readonly HashSet<uint> _rawPorts = [];
    private readonly Queue<(VsockHeader Header, byte[] Payload)> _rawQueue = new();
    private readonly AutoResetEvent _wake = new(false);
    private readonly Thread _thread;
    private readonly byte[] _scratch;
    private readonly int _rxDescriptorsPerChain;
    private VsockDevice? _device;
    private uint _nextPort = 49152;
    private volatile bool _stopping;
    private volatile bool _rxPaused;
    private int _transportResets;
    private int _reattachments;

    /// <summary>Creates the simulator (guest memory and queues); <see cref="Attach"/> connects it to a device.</summary>
    /// <param name="options">Options, or null for defaults.</param>
    /// <param name="guestCid">The guest CID (must match the device's).</param>
    public GuestSimulator(GuestSimulatorOptions? options = null, ulong guestCid = 3)
    {
        Options = options ?? new GuestSimulatorOptions();
        GuestCid = guestCid;
        ushort size = Options.QueueSize;
        _memory = GuestMemory.CreateAnonymous(new GuestAddress(MemoryBase), Options.MemorySize);
        _allocator = GuestAllocator.ForFirstRegion(_memory);
        _layouts = [QueueLayout.Allocate(_allocator, size), QueueLayout.Allocate(_allocator, size), QueueLayout.Allocate(_allocator, size)];
        _rxDriver = new TestDriver(_memory, _layouts[0], Options.EventIdx);
        _txDriver = new TestDriver(_memory, _layouts[1], Options.EventIdx);
        _eventDriver = new TestDriver(_memory, _layouts[2], Options.EventIdx);

        _rxDescriptorsPerChain = Options.RxLayout == GuestBufferLayout.Linear ? 1 : 2;
        int rxCount = size / _rxDescriptorsPerChain;
        _rxSlots = new GuestAddress[rxCount];
        for (int i = 0; i < rxCount; i++)
        {
            _rxSlots[i] = _allocator.Allocate((ulong)(VsockHeader.Size + Options.RxBufferSize), 64);
        }

        _rxHeadToSlot = new int[size];
        int txCount = Math.Min((int)size, 64);
        _txSlots = new GuestAddress[txCount];
        _txTables = new GuestAddress[txCount];
        for (int i = txCount - 1; i >= 0; i--)
        {
            _txSlots[i] = _allocator.Allocate((ulong)(VsockHeader.Size + Options.MaxTxPayload), 64);
            _txTables[i] = _allocator.Allocate(16 * 2, 16);
            _freeTxSlots.Push(i);
        }

        // -1: the head carries no simulator buffer slot (free, or a raw chain from PostRawTxChain).
        _txHeadToSlot = new int[size];
        Array.Fill(_txHeadToSlot, -1);
        _eventBuffers = _allocator.Allocate(4 * 8, 16);
        _scratch = new byte[Math.Max(Options.MaxTxPayload, Options.RxBufferSize)];
        _thread = new Thread(Run) { IsBackground = true, Name = "guest-sim" };
    }

    /// <summary>The options.</summary>
    public GuestSimulatorOptions Options { get; }

    /// <summary>The guest CID.</summary>
    public ulong GuestCid { get; }

    /// <summary>The guest memory.</summary>
    public GuestMemory Memory => _memory;

    /// <summary>Every RX header received, when <see cref="GuestSimulatorOptions.LogReceived"/> is set.</summary>
    public ConcurrentQueue<VsockHeader> ReceivedLog { get; } = new();

    /// <summary>Packets the device sent to ports claimed with <see cref="ClaimRawPort"/> (not answered by the simulator).</summary>
    public ConcurrentQueue<VsockHeader> RawReceived { get; } = new();

    /// <summary>Used RX buffers whose length did not match their header (device bugs).</summary>
    public int MalformedRxPackets { get; private set; }

    /// <summary>TRANSPORT_RESET events received.</summary>
    public int TransportResets => Volatile.Read(ref _transportResets);

    /// <summary>Every TX chain the guest posted has come back (none outstanding).</summary>
    public int OutstandingTxChains
    {
        get
        {
            lock (Sync)
            {
                return _txDriver.OutstandingChains;
            }
        }
    }

    internal object Sync { get; } = new();

    /// <summary>Creates a simulator and a device wired to it, ready to use.</summary>
    /// <param name="deviceOptions">Device options (the guest CID is taken from them).</param>
    /// <param name="backend">The device's backend.</param>
    /// <param name="options">Simulator options.</param>
    /// <returns>The simulator and the device.</returns>
    public static (GuestSimulator Simulator, VsockDevice Device) Create(VsockDeviceOptions deviceOptions, IVsockBackend backend, GuestSimulatorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(deviceOptions);
        var simulator = new GuestSimulator(options, deviceOptions.GuestCid);
        var device = new VsockDevice(deviceOptions, backend, simulator);
        simulator.Attach(device);
        return (simulator, device);
    }

    /// <summary>Negotiates features, hands memory and queues to the device, posts RX and event buffers, starts the driver thread.</summary>
    /// <param name="device">The device (created with this simulator as notifier).</param>
    public void Attach(VsockDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        _device = device;
        device.SetFeatures(DriverFeatures);
        device.SetMemory(_memory);
        lock (Sync)
        {
            for (int i = 0; i < _rxSlots.Length; i++)
            {
                PostRx(i);
            }

            _rxDriver.Publish();
            for (int i = 0; i < 4; i++)
            {
                _eventDriver.AddChain(TestBuffer.DeviceWritable(_eventBuffers.CheckedAdd((ulong)i * 8), 8));
            }

            _eventDriver.Publish();
        }

        for (int q = 0; q < 3; q++)
        {
            QueueLayout layout = _layouts[q];
            device.StartQueue(q, new VsockQueueConfig(layout.Size, layout.DescriptorTable, layout.AvailRing, layout.UsedRing));
        }

        _thread.Start();
    }

    /// <summary>
    /// Stops taking used RX buffers (the driver neither reads nor reposts them), as a guest whose driver is stuck
    /// or hostile would: the device runs out of RX buffers. Setting it back to <see langword="false"/> resumes.
    /// </summary>
    public bool RxPaused
    {
        get => _rxPaused;
        set
        {
            _rxPaused = value;
            _wake.Set();
        }
    }

    /// <summary>Connects to <paramref name="hostPort"/> on the host (CID 2).</summary>
    /// <param name="hostPort">The host port.</param>
    /// <param name="type">Stream or seqpacket.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>The connected socket.</returns>
    /// <exception cref="GuestSocketException">Refused (RST) or timed out.</exception>
    public Task<GuestSocket> ConnectAsync(uint hostPort, VsockType type = VsockType.Stream, CancellationToken cancellationToken = default) =>
        ConnectToAsync(VsockCid.Host, hostPort, type, cancellationToken);

    /// <summary>Connects to <paramref name="port"/> at <paramref name="cid"/>: the host (2) or a sibling guest.</summary>
    /// <param name="cid">The peer's CID.</param>
    /// <param name="port">The peer's port.</param>
    /// <param name="type">Stream or seqpacket.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>The connected socket.</returns>
    /// <exception cref="GuestSocketException">Refused (RST) or timed out.</exception>
    public async Task<GuestSocket> ConnectToAsync(ulong cid, uint port, VsockType type = VsockType.Stream, CancellationToken cancellationToken = default)
    {
        GuestSocket socket;
        lock (Sync)
        {
            uint localPort;
            do
            {
                localPort = _nextPort++;
                if (_nextPort == 0)
                {
                    _nextPort = 49152;
                }
            }
            while (_sockets.ContainsKey((localPort, cid, port)));

            socket = new GuestSocket(this, type, localPort, cid, port, GuestSocketState.Connecting);
            _sockets.Add((localPort, cid, port), socket);
            socket.StartConnect();
            ScheduleTx(socket);
        }

        try
        {
            await socket.ConnectedTask.WaitAsync(Options.ConnectTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            lock (Sync)
            {
                socket.OnConnectTimeout();
            }

            throw new GuestSocketException($"Connect to {cid}:{port} timed out.");
        }

        return socket;
    }

    /// <summary>Listens on a guest port for connections from the host or from sibling guests.</summary>
    /// <param name="port">The guest port.</param>
    /// <param name="type">Stream or seqpacket.</param>
    /// <returns>The listener.</returns>
    public GuestListener Listen(uint port, VsockType type = VsockType.Stream)
    {
        var listener = new GuestListener(this, port, type);
        lock (Sync)
        {
            _listeners.Add((port, type), listener);
        }

        return listener;
    }

    /// <summary>Sends a raw packet as the guest (any header, for hostile-input tests). <c>len</c> is set from the payload unless <paramref name="keepLen"/>.</summary>
    /// <param name="header">The header.</param>
    /// <param name="payload">The payload.</param>
    /// <param name="keepLen">Keep the header's <c>len</c> as given.</param>
    public void SendRaw(VsockHeader header, ReadOnlySpan<byte> payload = default, bool keepLen = false)
    {
        if (!keepLen)
        {
            header.Len = (uint)payload.Length;
        }

        lock (Sync)
        {
            _rawQueue.Enqueue((header, payload.ToArray()));
        }

        _wake.Set();
    }

    /// <summary>Sends raw packets as the guest in one TX batch: all their chains are published before one kick, so the
    /// device sees them in the same turn (<c>len</c> is set from each payload).</summary>
    /// <param name="packets">The headers and payloads, in order.</param>
    public void SendRawBatch(params ReadOnlySpan<(VsockHeader Header, byte[] Payload)> packets)
    {
        lock (Sync)
        {
            foreach ((VsockHeader header, byte[] payload) in packets)
            {
                _rawQueue.Enqueue((header with { Len = (uint)payload.Length }, payload));
            }
        }

        _wake.Set();
    }

    /// <summary>Packets the device sends to guest port <paramref name="port"/> go to <see cref="RawReceived"/> and get no automatic answer.</summary>
    /// <param name="port">The guest port a raw test uses.</param>
    public void ClaimRawPort(uint port)
    {
        lock (Sync)
        {
            _rawPorts.Add(port);
        }
    }

    /// <summary>Waits for a packet in <see cref="RawReceived"/> matching <paramref name="match"/>.</summary>
    /// <param name="match">The predicate.</param>
    /// <param name="timeout">How long to wait.</param>
    /// <returns>The header, or null on timeout.</returns>
    public async Task<VsockHeader?> WaitRawAsync(Func<VsockHeader, bool> match, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(match);
        DateTime deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            foreach (VsockHeader header in RawReceived)
            {
                if (match(header))
                {
                    return header;
                }
            }

            await Task.Delay(2).ConfigureAwait(false);
        }

        return null;
    }

    /// <summary>Posts a raw TX chain built by <paramref name="build"/> (for malformed-chain tests) and kicks.</summary>
    /// <param name="build">Writes descriptors through the TX driver and returns nothing; the chain is published.</param>
    public void PostRawTxChain(Action<TestDriver, GuestAllocator> build)
    {
        ArgumentNullException.ThrowIfNull(build);
        lock (Sync)
        {
            build(_txDriver, _allocator);
            _txDriver.Publish();
            if (_txDriver.KickNeeded())
            {
                _device?.Kick(1);
            }
        }
    }

    /// <summary>Number of live guest sockets.</summary>
    public int SocketCount
    {
        get
        {
            lock (Sync)
            {
                return _sockets.Count;
            }
        }
    }

    /// <inheritdoc/>
    public void NotifyQueue(int queueIndex) => _wake.Set();

    /// <summary>Stops the driver thread and releases guest memory (dispose the device first).</summary>
    public void Dispose()
    {
        _stopping = true;
        _wake.Set();
        if (_thread.IsAlive)
        {
            _thread.Join();
        }

        _memory.Dispose();
        _wake.Dispose();
    }

    // ---------------------------------------------------------------- socket bookkeeping (under Sync)

    internal void ScheduleTx(GuestSocket socket)
    {
        if (!socket.InTxQueue)
        {
            socket.InTxQueue = true;
            _txQueue.Enqueue(socket);
            _wake.Set();
        }
    }

    internal void Forget(GuestSocket socket)
    {
        if (_sockets.TryGetValue((socket.LocalPort, socket.PeerCid, socket.PeerPort), out GuestSocket? current) && ReferenceEquals(current, socket))
        {
            _sockets.Remove((socket.LocalPort, socket.PeerCid, socket.PeerPort));
        }
    }

    internal void RemoveListener(GuestListener listener)
    {
        lock (Sync)
        {
            _listeners.Remove((listener.Port, listener.Type));
        }
    }

    // ---------------------------------------------------------------- driver thread

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
                    bool progress = ReapTx() | (!_rxPaused && ReapRx()) | ReapEvents() | PumpTx();
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
            _eventDriver.Publish();
            if (_eventDriver.KickNeeded())
            {
                _device?.Kick(2);
            }
        }

        _eventDriver.EnableInterrupts();
        return any;
    }

    private void OnTransportReset()
    {
        // Linux: established connections are reset; listeners survive.
        foreach (GuestSocket socket in _sockets.Values.ToArray())
        {
            socket.Finish(reset: true);
        }
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
                        MalformedRxPackets++;
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
                    MalformedRxPackets++;
                }

                PostRx(slot);
            }

            if (any)
            {
                _rxDriver.Publish();
                if (_rxDriver.KickNeeded())
                {
                    _device?.Kick(0);
                }
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

    private void Dispatch(in VsockHeader header, ReadOnlySpan<byte> payload)
    {
        if (Options.LogReceived && ReceivedLog.Count < MaxLog)
        {
            ReceivedLog.Enqueue(header);
        }

        if (_rawPorts.Contains(header.DstPort))
        {
            RawReceived.Enqueue(header);
            return;
        }

        if (header.DstCid != GuestCid || (header.SrcCid != VsockCid.Host && !VsockCid.IsValidGuestCid(header.SrcCid)))
        {
            MalformedRxPackets++;
            return;
        }

        if (_sockets.TryGetValue((header.DstPort, header.SrcCid, header.SrcPort), out GuestSocket? socket))
        {
            socket.OnPacket(header, payload);
            return;
        }

        if (header.Op == VsockOp.Request && _listeners.TryGetValue((header.DstPort, header.Type), out GuestListener? listener))
        {
            socket = new GuestSocket(this, header.Type, header.DstPort, header.SrcCid, header.SrcPort, GuestSocketState.Connected);
            _sockets.Add((header.DstPort, header.SrcCid, header.SrcPort), socket);
            socket.StartAccepted(header);
            ScheduleTx(socket);
            listener.Deliver(socket);
            return;
        }

        if (header.Op != VsockOp.Rst)
        {
            _rawQueue.Enqueue((new VsockHeader
            {
                SrcCid = GuestCid,
                DstCid = header.SrcCid,
                SrcPort = header.DstPort,
                DstPort = header.SrcPort,
                Type = header.Type,
                Op = VsockOp.Rst,
            }, []));
        }
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
            _txDriver.Publish();
            if (_txDriver.KickNeeded())
            {
                _device?.Kick(1);
            }
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
