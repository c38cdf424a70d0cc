using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Virtio.Memory;
using Virtio.Queue;
using Virtio.Vsock.Device.Siblings;

namespace Virtio.Vsock.Device;

/// <summary>
/// The virtio socket device (device ID 19): feature negotiation, config space, and the three queues
/// (RX 0, TX 1, event 2), driven by its own loop thread. Transport-agnostic: a transport (vhost-user, an
/// in-process VMM, the guest simulator) sets memory and queues, forwards kicks, and is told through
/// <see cref="IVsockDeviceNotifier"/> when to interrupt the driver.
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> the <see cref="VirtQueue"/>s, the lease on the current <see cref="GuestMemory"/>, the two
/// reusable <see cref="VsockPacket"/>s (TX and RX; one RX buffer may be held parsed while nothing is ready to
/// send), the loop thread, the pending transport-reset event and the <see cref="VsockMetrics"/>.</para>
/// <para><b>Queue rules:</b> every TX chain goes back to the used ring (length 0; unparsable ones too, and
/// counted); an RX chain is used only when a packet is ready for it; TX keeps being processed while RX is
/// full, since every reply it provokes is a per-connection flag or an entry of a fixed RST ring, and TX
/// pauses only while that ring is full; each turn handles a bounded batch, so a guest cannot starve the
/// loop. Kicks are suppressed while a queue is being drained (NO_NOTIFY / EVENT_IDX) and re-enabled with
/// a re-check, so an idle device sleeps.</para>
/// <para><b>Siblings:</b> with <see cref="VsockDeviceOptions.Siblings"/>, packets for another guest's CID go to the
/// <see cref="SiblingRelay"/>, and packets from sibling guests share the RX queue with host connections (the
/// two take turns). Another device is only ever reached by queuing on a route and waking its loop.</para>
/// <para><b>Must never:</b> block or throw on the processing path, touch connections from another thread,
/// wait for another device, or keep using a queue whose ring is corrupt (it is stopped and logged until the
/// next reset/start).</para>
/// <para><b>Threading:</b> every public method is thread-safe. Control operations (memory, queues, features,
/// reset) run on the loop and wait for it; <see cref="Kick"/> only sets a bit and wakes the loop.</para>
/// </remarks>
public sealed partial class VsockDevice : IVsockBackendHost, IDisposable
{
    /// <summary>The virtio device ID of a socket device.</summary>
    public const uint DeviceId = 19;

    /// <summary>The size of the config space: <c>le64 guest_cid</c>.</summary>
    public const int ConfigSize = 8;

    /// <summary>The largest queue size the device accepts.</summary>
    public const ushort MaxQueueSize = 32768;

    /// <summary>The features the device offers.</summary>
    public const ulong OfferedFeatures =
        VsockFeatures.Version1 | VsockFeatures.Stream | VsockFeatures.SeqPacket | VsockFeatures.NoImpliedStream
        | VsockFeatures.EventIndex | VsockFeatures.IndirectDescriptors;

    private const int RxBudget = 256;

    private readonly VsockDeviceOptions _options;
    private readonly IVsockBackend _backend;
    private readonly IVsockDeviceNotifier _notifier;
    private readonly ILogger? _logger;
    private readonly DeviceEventLoop _loop;
    private readonly VsockMuxer _muxer;
    private readonly SiblingRelay? _relay;
    private readonly VirtQueue[] _queues = new VirtQueue[VsockQueueIndex.Count];
    private readonly bool[] _running = new bool[VsockQueueIndex.Count];
    private readonly bool[] _broken = new bool[VsockQueueIndex.Count];

    // Per-queue notification counts for diagnostics (loop thread only; read by snapshots, which run on the loop).
    private readonly long[] _queueNotifications = new long[VsockQueueIndex.Count];
    private readonly long[] _queueSuppressed = new long[VsockQueueIndex.Count];
    private VsockPacket _txPacket = new();
    private readonly VsockPacket _rxPacket = new();
    private readonly RxBatch _rxBatch;
    private GuestMemory? _memory;
    private ulong _features;
    private bool _rxHeld;
    private bool _txBlocked;

    // Set when the driver stopped both data queues; the next start of both probes every connection.
    private bool _driverStopped;
    private bool _pendingTransportReset;
    private int _kickMask;
    private int _siblingConnectionCount;
    private bool _rxSiblingsFirst;
    private bool _disposed;
    private bool _faulted;

    /// <summary>Creates the device and starts its loop thread (idle until queues run).</summary>
    /// <param name="options">Configuration; validated (a reserved guest CID throws).</param>
    /// <param name="backend">The host side of connections.</param>
    /// <param name="notifier">Where used-buffer notifications go.</param>
    /// <exception cref="ArgumentOutOfRangeException">An option is invalid.</exception>
    public VsockDevice(VsockDeviceOptions options, IVsockBackend backend, IVsockDeviceNotifier notifier)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(notifier);
        options.Validate();
        _options = options;
        _backend = backend;
        _notifier = notifier;
        _logger = options.Logger;
        for (int i = 0; i < _queues.Length; i++)
        {
            _queues[i] = new VirtQueue(MaxQueueSize);
        }

        _rxBatch = new RxBatch(TakeExtraRx);
        var polling = new AdaptivePolling((long)(options.PollMax.TotalSeconds * Stopwatch.Frequency), Stopwatch.Frequency);
        _loop = new DeviceEventLoop($"vsock-{options.GuestCid}", VsockQueueIndex.Count, OnKickEvent, Turn, NextDeadline, OnLoopFault, polling);
        Metrics.Polling = polling;
        _muxer = new VsockMuxer(options, backend, _loop, Metrics);
        BufferBudget budget = _muxer.Budget;
        Metrics.BufferedBytesSource = () => budget.Used;
        if (options.Siblings is not null)
        {
            _relay = new SiblingRelay(options.Siblings, _muxer, _loop);
            _muxer.Siblings = _relay;
            _relay.Join(options.GuestCid, options.SiblingGroups);
        }

        _loop.Start();
        backend.Attach(this);
    }

    /// <inheritdoc/>
    public ulong GuestCid => _options.GuestCid;

    /// <inheritdoc/>
    public IVsockFdPoller FdPoller => _loop;

    /// <summary>The negotiated features (0 until <see cref="SetFeatures"/>).</summary>
    public ulong Features => Volatile.Read(ref _features);

    /// <summary>The device's counters.</summary>
    public VsockMetrics Metrics { get; } = new();

    /// <summary>The number of live connections with host programs: updated on the loop as each opens or ends, before any
    /// packet that shows it (0 once the device has faulted).</summary>
    public int ConnectionCount => IsFaulted ? 0 : _muxer.PublishedConnectionCount;

    /// <summary>
    /// Raised on the device's loop thread when the device's own processing failed unexpectedly (a bug, not
    /// guest input: guest input gets error values and RSTs). The device has then dropped every connection
    /// and stopped processing queues until its next <see cref="Reset"/>; other devices are unaffected. A
    /// transport should tell or drop its frontend (the vhost-user daemon disconnects it). Handlers must not block.
    /// </summary>
    public event Action<VsockDevice, Exception>? Faulted;

    /// <summary>Whether the device stopped after a fault (see <see cref="Faulted"/>) and waits for a reset.</summary>
    public bool IsFaulted => Volatile.Read(ref _faulted);

    /// <summary>The counters of sibling traffic, or <see langword="null"/> when the device is in no CID map.</summary>
    public SiblingMetrics? SiblingMetrics => _relay?.Metrics;

    /// <summary>The number of live connections with sibling guests, as of the loop's last turn.</summary>
    public int SiblingConnectionCount => Volatile.Read(ref _siblingConnectionCount);

    /// <summary>Reads the config space (<c>le64 guest_cid</c>); bytes past its end read as 0.</summary>
    /// <param name="offset">The first byte.</param>
    /// <param name="destination">Where the bytes go.</param>
    public void ReadConfig(uint offset, Span<byte> destination)
    {
        Span<byte> config = stackalloc byte[ConfigSize];
        BinaryPrimitives.WriteUInt64LittleEndian(config, _options.GuestCid);
        destination.Clear();
        if (offset < ConfigSize)
        {
            ReadOnlySpan<byte> source = config[(int)offset..];
            source[..Math.Min(source.Length, destination.Length)].CopyTo(destination);
        }
    }

    /// <summary>Sets the negotiated features; bits the device does not offer are dropped.</summary>
    /// <param name="features">The driver's acknowledged features.</param>
    /// <returns>The features in effect.</returns>
    public ulong SetFeatures(ulong features) => _loop.Invoke(() =>
    {
        ulong accepted = features & OfferedFeatures;
        Volatile.Write(ref _features, accepted);
        _muxer.Features = accepted;
        foreach (VirtQueue queue in _queues)
        {
            queue.EventIdx = (accepted & VsockFeatures.EventIndex) != 0;
            queue.IndirectDescriptors = (accepted & VsockFeatures.IndirectDescriptors) != 0;
        }

        return accepted;
    });

    /// <summary>Sets (or replaces) guest memory. The device takes its own lease; the caller keeps ownership of its reference.</summary>
    /// <param name="memory">The guest memory.</param>
    /// <exception cref="ObjectDisposedException">The memory was already released.</exception>
    public void SetMemory(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        _loop.Invoke(() =>
        {
            if (!memory.TryAcquire())
            {
                throw new ObjectDisposedException(nameof(GuestMemory));
            }

            UndoHeldRx();
            _memory?.Release();
            _memory = memory;
            Array.Clear(_broken);
            UpdateOnline();
            Kick(VsockQueueIndex.Tx);
            Kick(VsockQueueIndex.Rx);
        });
    }

    /// <summary>Configures and starts queue <paramref name="queueIndex"/> (vhost-user SET_VRING_* then KICK).</summary>
    /// <param name="queueIndex">0, 1 or 2.</param>
    /// <param name="config">Where the queue lives and where to resume.</param>
    /// <exception cref="ArgumentException">The configuration is invalid for the current memory.</exception>
    /// <exception cref="InvalidOperationException">No memory was set.</exception>
    public void StartQueue(int queueIndex, VsockQueueConfig config)
    {
        CheckIndex(queueIndex);
        _loop.Invoke(() =>
        {
            GuestMemory memory = _memory ?? throw new InvalidOperationException("Set guest memory before starting queues.");
            VirtQueue queue = _queues[queueIndex];
            if (queueIndex == VsockQueueIndex.Rx)
            {
                _rxHeld = false;
            }

            queue.Reset();
            queue.Size = config.Size;
            queue.DescriptorTable = config.DescriptorTable;
            queue.AvailRing = config.AvailRing;
            queue.UsedRing = config.UsedRing;
            queue.EventIdx = (_features & VsockFeatures.EventIndex) != 0;
            queue.IndirectDescriptors = (_features & VsockFeatures.IndirectDescriptors) != 0;
            queue.NextAvail = config.NextAvail;
            queue.NextUsed = config.NextUsed ?? config.NextAvail;
            queue.Ready = true;
            QueueError error = queue.Validate(memory);
            if (error != QueueError.None)
            {
                queue.Reset();
                throw new ArgumentException($"Queue {queueIndex}: {error}.", nameof(config));
            }

            _running[queueIndex] = true;
            _broken[queueIndex] = false;
            ForgetWatchedQueue(queueIndex);
            if (_driverStopped && _running[VsockQueueIndex.Rx] && _running[VsockQueueIndex.Tx])
            {
                // The driver stopped every queue and started them again: paused, or rebooted without a
                // device reset (QEMU keeps the vhost-user connection across a guest reboot). Ask each
                // connection's guest end; a rebooted guest answers RST and the host side is closed.
                _driverStopped = false;
                _muxer.ProbeAll();
            }

            UpdateOnline();
            Kick(queueIndex);
        });
    }

    /// <summary>Stops queue <paramref name="queueIndex"/> (vhost-user GET_VRING_BASE) and returns where it stopped.</summary>
    /// <param name="queueIndex">0, 1 or 2.</param>
    /// <returns>The next available index the device would have read.</returns>
    public ushort StopQueue(int queueIndex)
    {
        CheckIndex(queueIndex);
        return _loop.Invoke(() =>
        {
            VirtQueue queue = _queues[queueIndex];
            if (queueIndex == VsockQueueIndex.Rx)
            {
                UndoHeldRx();
            }

            if (_running[queueIndex] && _memory is not null)
            {
                queue.PublishUsed(_memory);
            }

            _running[queueIndex] = false;
            if (!_running[VsockQueueIndex.Rx] && !_running[VsockQueueIndex.Tx])
            {
                _driverStopped = true;
            }

            UpdateOnline();
            ushort next = queue.NextAvail;
            queue.Ready = false;
            return next;
        });
    }

    /// <summary>
    /// A kick (available-buffer notification) arrived on <paramref name="queueIndex"/>: for transports without
    /// eventfds (an in-process VMM, the guest simulator). Lock-free; never blocks: it sets a bit and wakes the loop
    /// (one eventfd write unless the loop is already awake). Transports with kick eventfds hand them to
    /// <see cref="AttachKickEventFd"/> instead, so kicks never leave the loop thread.
    /// </summary>
    /// <param name="queueIndex">0, 1 or 2; other values are ignored.</param>
    public void Kick(int queueIndex)
    {
        if ((uint)queueIndex >= VsockQueueIndex.Count)
        {
            return;
        }

        Interlocked.Increment(ref Metrics.KicksField);
        Interlocked.Or(ref _kickMask, 1 << queueIndex);
        _loop.Wake();
    }

    /// <summary>
    /// Makes the device's loop wait on <paramref name="eventFd"/> as queue <paramref name="queueIndex"/>'s kick
    /// (vhost-user SET_VRING_KICK): the loop's epoll wakes on it directly, no thread of the transport's is
    /// involved. The device takes ownership of the descriptor and closes it on <see cref="DetachKickEventFd"/>, when
    /// another kick descriptor replaces it, or when the device is reset or disposed. Stopping the queue keeps it
    /// (kicks of a stopped queue are ignored), so a queue disabled and enabled again keeps its kick.
    /// </summary>
    /// <param name="queueIndex">0, 1 or 2.</param>
    /// <param name="eventFd">An eventfd the driver's kicks increment.</param>
    /// <exception cref="IOException">The descriptor cannot be watched (it is closed).</exception>
    /// <exception cref="ObjectDisposedException">The device is disposed (the descriptor is closed).</exception>
    public void AttachKickEventFd(int queueIndex, SafeHandle eventFd)
    {
        CheckIndex(queueIndex);
        ArgumentNullException.ThrowIfNull(eventFd);
        int error;
        try
        {
            error = _loop.Invoke(() =>
            {
                int result = _loop.WatchKick(queueIndex, eventFd);
                if (result == 0)
                {
                    // Look at the ring once: chains published before the descriptor was watched may have been kicked
                    // to the old one.
                    Interlocked.Or(ref _kickMask, 1 << queueIndex);
                    _loop.Wake();
                }

                return result;
            });
        }
        catch (ObjectDisposedException)
        {
            eventFd.Dispose();
            throw;
        }

        if (error != 0)
        {
            throw new IOException($"vsock device: cannot watch the kick eventfd of queue {queueIndex}: errno {error}.");
        }
    }

    /// <summary>
    /// Writes VIRTIO_VSOCK_EVENT_TRANSPORT_RESET to the event queue (as soon as it has a buffer) and resets every
    /// connection without RST: the driver resets its established sockets itself. Listeners survive.
    /// For in-process VMMs, e.g. after restoring a snapshot.
    /// </summary>
    public void SendTransportReset() => _loop.Invoke(() =>
    {
        _muxer.ResetAll();
        _relay?.OnLocalReset(online: IsOnline);
        _pendingTransportReset = true;
        ProcessEvent();
    });

    /// <summary>Device reset: every connection is dropped (host endpoints aborted), queues stopped, features cleared, memory released.</summary>
    public void Reset() => _loop.Invoke(ResetOnLoop);

    /// <inheritdoc/>
    public Task<uint> ConnectAsync(uint guestPort, VsockType type, IVsockEndpoint endpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (cancellationToken.IsCancellationRequested)
        {
            endpoint.Close(abort: true);
            return Task.FromCanceled<uint>(cancellationToken);
        }

        var completion = new TaskConnectCompletion();
        Connect(guestPort, type, endpoint, completion, cancellationToken);
        return completion.Task;
    }

    /// <inheritdoc/>
    public void Connect(uint guestPort, VsockType type, IVsockEndpoint endpoint, IVsockConnectCompletion completion, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(completion);
        if (_disposed)
        {
            _muxer.AbandonConnect(endpoint, completion, new VsockConnectException(VsockConnectFailure.NotRunning, "The vsock device is disposed."));
            return;
        }

        _loop.Post(
            () =>
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    _muxer.AbandonConnect(endpoint, completion, new OperationCanceledException(cancellationToken));
                    return;
                }

                try
                {
                    // The muxer handles the failures it can meet (an endpoint that throws while closing, a connection
                    // whose set-up throws), each telling the completion once.
                    _muxer.Connect(guestPort, type, endpoint, completion, cancellationToken, running: IsOnline && !_faulted);
                }
                catch (Exception exception)
                {
                    // Before the connection exists (a bug): this attempt fails and the device goes on.
                    _muxer.AbandonConnect(endpoint, completion, exception);
                }
            },
            abandon: disposed => _muxer.AbandonConnect(endpoint, completion, disposed));
    }

    /// <summary>Resets the device and stops its loop thread.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            _loop.Invoke(ResetOnLoop);
        }
        catch (ObjectDisposedException)
        {
        }
        finally
        {
            _relay?.Leave();
            _loop.Dispose();
        }
    }

    // ---------------------------------------------------------------- loop

    /// <summary>The loop's own work threw (a bug): drop every connection, stop using the queues until the next reset,
    /// and tell the transport. Runs on the loop; must not throw.</summary>
    private void OnLoopFault(Exception exception)
    {
        Volatile.Write(ref _faulted, true);
        Interlocked.Increment(ref Metrics.DeviceFaultsField);
        if (_logger is not null)
        {
            LogDeviceFault(_logger, _options.GuestCid, exception);
        }
        else
        {
            Trace.TraceError("vsock device {0}: stopped after an unexpected fault: {1}", _options.GuestCid, exception);
        }

        try
        {
            _muxer.ResetAll();
            _relay?.OnLocalReset(online: false);
        }
        catch (Exception second)
        {
            Trace.TraceError("vsock device {0}: dropping connections after a fault failed: {1}", _options.GuestCid, second);
        }

        Array.Fill(_broken, true);
        Volatile.Write(ref _siblingConnectionCount, 0);
        try
        {
            Faulted?.Invoke(this, exception);
        }
        catch (Exception second)
        {
            Trace.TraceError("vsock device {0}: a Faulted handler threw: {1}", _options.GuestCid, second);
        }
    }

    private void ResetOnLoop()
    {
        _loop.ClearFault();
        Volatile.Write(ref _faulted, false);
        _muxer.ResetAll();
        _relay?.OnLocalReset(online: false);
        _backend.OnDeviceReset();
        for (int q = 0; q < _queues.Length; q++)
        {
            _queues[q].Reset();
            _loop.UnwatchKick(q);
            ForgetWatchedQueue(q);
        }

        _watchDeadline = long.MaxValue;
        _publishedSinceWatch = false;

        Array.Clear(_running);
        Array.Clear(_broken);
        _driverStopped = false;
        _rxHeld = false;
        _txBlocked = false;
        _pendingTransportReset = false;
        Volatile.Write(ref _features, 0);
        _muxer.Features = 0;
        _memory?.Release();
        _memory = null;
        Volatile.Write(ref _siblingConnectionCount, 0);
    }

    /// <summary>Stops waiting on queue <paramref name="queueIndex"/>'s kick eventfd and closes it (vhost-user: the ring was
    /// stopped with GET_VRING_BASE; the frontend sends a new kick when it starts the ring again). Idempotent.</summary>
    /// <param name="queueIndex">0, 1 or 2.</param>
    public void DetachKickEventFd(int queueIndex)
    {
        CheckIndex(queueIndex);
        try
        {
            _loop.Invoke(() => _loop.UnwatchKick(queueIndex));
        }
        catch (ObjectDisposedException)
        {
            // Disposed: the loop closed every kick descriptor.
        }
    }

    /// <summary>A kick eventfd fired (on the loop: no wake-up needed, the turn follows).</summary>
    private void OnKickEvent(int queueIndex)
    {
        Interlocked.Increment(ref Metrics.KicksField);
        Interlocked.Or(ref _kickMask, 1 << queueIndex);
    }

    private bool IsOnline => _running[VsockQueueIndex.Rx] && _running[VsockQueueIndex.Tx] && _memory is not null;

    /// <summary>Tells siblings whether this guest's driver runs (new connections to it are refused while not).</summary>
    private void UpdateOnline() => _relay?.SetOnline(IsOnline);

    private long NextDeadline() => Math.Min(_watchDeadline, _relay is null ? _muxer.NextDeadline : Math.Min(_muxer.NextDeadline, _relay.NextDeadline));

    private void UndoHeldRx()
    {
        if (_rxHeld)
        {
            VirtQueue rx = _queues[VsockQueueIndex.Rx];
            rx.NextAvail = (ushort)(rx.NextAvail - 1);
            _rxHeld = false;
        }
    }

    private static void CheckIndex(int queueIndex)
    {
        if ((uint)queueIndex >= VsockQueueIndex.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(queueIndex), queueIndex, "Queue index must be 0 (RX), 1 (TX) or 2 (event).");
        }
    }

    // Source-generated: a disabled level costs a check, no boxing, no formatting (bad chains come from the guest).
    [LoggerMessage(EventId = 200, Level = LogLevel.Debug, Message = "vsock: bad {Queue} chain {Head}: {Error}")]
    private static partial void LogBadChain(ILogger logger, string queue, ushort head, VsockPacketError error);

    [LoggerMessage(EventId = 202, Level = LogLevel.Critical, Message = "vsock: device for guest CID {GuestCid} stopped after an unexpected fault; it waits for a reset from its frontend")]
    private static partial void LogDeviceFault(ILogger logger, ulong guestCid, Exception exception);

    [LoggerMessage(EventId = 201, Level = LogLevel.Error, Message = "vsock: queue {Queue} stopped: {Error}")]
    private static partial void LogQueueStopped(ILogger logger, int queue, QueueError error);
}
