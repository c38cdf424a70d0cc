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
/// <para><b>Files.</b> This file owns guest memory, the queue layouts and buffer slots, setup
/// (<see cref="Attach"/>) and teardown; <c>GuestSimulator.Driver.cs</c> is the driver thread,
/// <c>GuestSimulator.Sockets.cs</c> the socket layer, <c>GuestSimulator.Raw.cs</c> the raw access for
/// hostile-input tests and <c>GuestSimulator.Reattach.cs</c> a frontend reconnect. None of them may touch
/// the device other than through its public driver-facing calls (features, memory, queues, kicks).</para>
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
    private readonly int[] _kicksSent = new int[VsockQueueIndex.Count];
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
    private volatile bool _txCompletionsPaused;
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

    /// <summary>Used RX buffers whose used length did not match their header's <c>len</c>, or was shorter than a
    /// header or longer than the buffer (device bugs).</summary>
    public int RxLengthMismatches { get; private set; }

    /// <summary>RX packets not addressed to this guest's CID, or from a source CID that is neither the host nor a
    /// valid guest CID (the device answers a packet from a made-up CID from that CID, as Linux does; tests that send
    /// none expect none).</summary>
    public int MisaddressedRxPackets { get; private set; }

    /// <summary>Both kinds: <see cref="RxLengthMismatches"/> + <see cref="MisaddressedRxPackets"/>.</summary>
    public int MalformedRxPackets => RxLengthMismatches + MisaddressedRxPackets;

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

    /// <summary>
    /// Stops taking used RX and TX buffers back, as a driver whose completion handling is stuck would: they stay
    /// with the device's used rings and <c>used_event</c> stays where it was. Unlike <see cref="RxPaused"/> it does not
    /// wake the driver thread; <see cref="ResumeOnNextNotification"/> ends it.
    /// </summary>
    public void HoldCompletions()
    {
        _rxPaused = true;
        _txCompletionsPaused = true;
    }

    /// <summary>
    /// Ends <see cref="HoldCompletions"/> (and <see cref="RxPaused"/>) without waking the driver thread: it takes what
    /// it left only when the next used-buffer notification comes, as a driver that sleeps until its interrupt.
    /// </summary>
    public void ResumeOnNextNotification()
    {
        _rxPaused = false;
        _txCompletionsPaused = false;
    }

    /// <summary>Available-buffer notifications (kicks) the driver sent on queue <paramref name="queueIndex"/> (0 RX,
    /// 1 TX, 2 event): only those the device asked for, as Linux's <c>virtqueue_kick_prepare</c> decides.</summary>
    /// <param name="queueIndex">0, 1 or 2.</param>
    /// <returns>The count so far.</returns>
    public int KicksSent(int queueIndex) => Volatile.Read(ref _kicksSent[queueIndex]);

    /// <inheritdoc/>
    public void NotifyQueue(int queueIndex) => _wake.Set();

    /// <summary>Publishes what the driver queued on <paramref name="queueIndex"/> and kicks the device if it asked
    /// for it (under <see cref="Sync"/>), counting the kick.</summary>
    private void PublishAndKick(TestDriver driver, int queueIndex)
    {
        driver.Publish();
        if (driver.KickNeeded())
        {
            Interlocked.Increment(ref _kicksSent[queueIndex]);
            _device?.Kick(queueIndex);
        }
    }

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
}
