using System.Buffers.Binary;
using System.Diagnostics;
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

    private const int RxBatch = 256;

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
    private readonly VsockPacket _txPacket = new();
    private readonly VsockPacket _rxPacket = new();
    private GuestMemory? _memory;
    private ulong _features;
    private bool _rxHeld;
    private bool _txBlocked;

    // Set when the driver stopped both data queues; the next start of both probes every connection.
    private bool _driverStopped;
    private bool _pendingTransportReset;
    private int _kickMask;
    private int _connectionCount;
    private int _siblingConnectionCount;
    private bool _rxSiblingsFirst;
    private bool _disposed;

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

        _loop = new DeviceEventLoop($"vsock-{options.GuestCid}", Turn, NextDeadline);
        _muxer = new VsockMuxer(options, backend, _loop, Metrics);
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

    /// <summary>The negotiated features (0 until <see cref="SetFeatures"/>).</summary>
    public ulong Features => Volatile.Read(ref _features);

    /// <summary>The device's counters.</summary>
    public VsockMetrics Metrics { get; } = new();

    /// <summary>The number of live connections, as of the loop's last turn.</summary>
    public int ConnectionCount => Volatile.Read(ref _connectionCount);

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

    /// <summary>A kick (available-buffer notification) arrived on <paramref name="queueIndex"/>. Lock-free; never blocks.</summary>
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

        var completion = new TaskCompletionSource<uint>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (_disposed)
        {
            endpoint.Close(abort: true);
            completion.SetException(new VsockConnectException(VsockConnectFailure.NotRunning, "The vsock device is disposed."));
            return completion.Task;
        }

        _loop.Post(() => _muxer.Connect(
            guestPort, type, endpoint, completion, cancellationToken,
            running: _running[VsockQueueIndex.Rx] && _running[VsockQueueIndex.Tx] && _memory is not null));
        return completion.Task;
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
        finally
        {
            _relay?.Leave();
            _loop.Dispose();
        }
    }

    // ---------------------------------------------------------------- loop

    private void ResetOnLoop()
    {
        _muxer.ResetAll();
        _relay?.OnLocalReset(online: false);
        _backend.OnDeviceReset();
        foreach (VirtQueue queue in _queues)
        {
            queue.Reset();
        }

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
        Volatile.Write(ref _connectionCount, 0);
        Volatile.Write(ref _siblingConnectionCount, 0);
    }

    private bool IsOnline => _running[VsockQueueIndex.Rx] && _running[VsockQueueIndex.Tx] && _memory is not null;

    /// <summary>Tells siblings whether this guest's driver runs (new connections to it are refused while not).</summary>
    private void UpdateOnline() => _relay?.SetOnline(IsOnline);

    private long NextDeadline() => _relay is null ? _muxer.NextDeadline : Math.Min(_muxer.NextDeadline, _relay.NextDeadline);

    private void Turn(long now)
    {
        Interlocked.Increment(ref Metrics.LoopTurnsField);
        int kicks = Interlocked.Exchange(ref _kickMask, 0);
        GuestMemory? memory = _memory;
        if (memory is not null)
        {
            _muxer.RunTimers(now);
            _relay?.RunTimers(now);
            bool txKicked = (kicks & (1 << VsockQueueIndex.Tx)) != 0;
            bool again = false;
            for (int round = 0; round < 4; round++)
            {
                bool txMore = false;
                if (txKicked || _txBlocked)
                {
                    txMore = ProcessTx(memory, now);
                    txKicked = false;
                }

                bool rxProgress = ProcessRx(memory, out bool rxMore);

                // TX still blocked on owed RSTs while RX keeps draining them: not idle, even after the
                // last round (no kick would come: the RX buffers are there, TX notifications are off).
                again = txMore || rxMore || (_txBlocked && rxProgress);
                if (!(_txBlocked && rxProgress))
                {
                    break;
                }
            }

            if (again)
            {
                // A full batch: come back after other work had its turn.
                Interlocked.Or(ref _kickMask, (1 << VsockQueueIndex.Tx) | (1 << VsockQueueIndex.Rx));
                _loop.Wake();
            }

            if ((kicks & (1 << VsockQueueIndex.Event)) != 0 || _pendingTransportReset)
            {
                ProcessEvent();
            }
        }

        Volatile.Write(ref _connectionCount, _muxer.ConnectionCount);
        if (_relay is not null)
        {
            Volatile.Write(ref _siblingConnectionCount, _relay.FlowCount);
        }
    }

    /// <returns>Whether TX stopped at the batch limit with more chains waiting.</returns>
    private bool ProcessTx(GuestMemory memory, long now)
    {
        const int q = VsockQueueIndex.Tx;
        if (!_running[q] || _broken[q])
        {
            return false;
        }

        VirtQueue queue = _queues[q];
        queue.DisableNotification(memory);
        _txBlocked = false;
        int budget = _options.TxBatch;
        bool used = false;
        bool more = false;
        while (true)
        {
            if (_muxer.ResetQueueFull)
            {
                Interlocked.Increment(ref Metrics.TxQueueStallsField);
                _txBlocked = true;
                break;
            }

            if (budget-- == 0)
            {
                more = true;
                break;
            }

            if (!queue.TryPopChain(memory, out DescriptorChain chain, out QueueError error))
            {
                if (error != QueueError.None)
                {
                    Break(q, error);
                    break;
                }

                queue.EnableNotification(memory, out bool hasMore);
                if (hasMore)
                {
                    queue.DisableNotification(memory);
                    continue;
                }

                break;
            }

            VsockPacketError parse = _txPacket.TryParseTx(memory, ref chain, _options.MaxPacketData);
            if (parse.IsError)
            {
                Interlocked.Increment(ref Metrics.TxInvalidChainsField);
                if (_logger is not null)
                {
                    LogBadChain(_logger, "TX", chain.HeadIndex, parse);
                }
            }
            else
            {
                _tap?.OnPacket(_txPacket, fromGuest: true);
                _muxer.HandleTx(_txPacket, now);
            }

            queue.AddUsedDeferred(memory, chain.HeadIndex, 0);
            used = true;
        }

        if (used)
        {
            Publish(q, memory);
        }

        return more;
    }

    /// <returns>Whether any RX buffer was used.</returns>
    private bool ProcessRx(GuestMemory memory, out bool more)
    {
        const int q = VsockQueueIndex.Rx;
        more = false;
        if (!_running[q] || _broken[q])
        {
            return false;
        }

        VirtQueue queue = _queues[q];
        bool used = false;
        int budget = RxBatch;
        while (_muxer.HasRxWork || (_relay?.HasRxWork ?? false))
        {
            if (budget-- == 0)
            {
                more = true;
                break;
            }

            if (!_rxHeld)
            {
                if (!queue.TryPopChain(memory, out DescriptorChain chain, out QueueError error))
                {
                    if (error != QueueError.None)
                    {
                        Break(q, error);
                        break;
                    }

                    // Work waits for buffers: ask for a kick, unless some arrived meanwhile.
                    queue.EnableNotification(memory, out bool hasMore);
                    if (hasMore)
                    {
                        continue;
                    }

                    break;
                }

                VsockPacketError parse = _rxPacket.TryParseRx(memory, ref chain, _options.MaxPacketData);
                if (parse.IsError)
                {
                    Interlocked.Increment(ref Metrics.RxInvalidChainsField);
                    if (_logger is not null)
                    {
                        LogBadChain(_logger, "RX", chain.HeadIndex, parse);
                    }
                    queue.AddUsedDeferred(memory, chain.HeadIndex, 0);
                    used = true;
                    continue;
                }

                _rxHeld = true;
            }

            uint length = FillRx(_rxPacket);
            if (length == 0)
            {
                break;
            }

            _rxHeld = false;
            Interlocked.Increment(ref Metrics.RxPacketsField);
            _tap?.OnPacket(_rxPacket, fromGuest: false);
            queue.AddUsedDeferred(memory, _rxPacket.HeadIndex, length);
            used = true;
        }

        if (used)
        {
            Publish(q, memory);
        }

        return used;
    }

    /// <summary>Fills one RX buffer from host connections or sibling guests, taking turns.</summary>
    private uint FillRx(VsockPacket rx)
    {
        if (_relay is null)
        {
            return _muxer.FillRx(rx);
        }

        _rxSiblingsFirst = !_rxSiblingsFirst;
        if (_rxSiblingsFirst)
        {
            uint used = _relay.FillRx(rx);
            return used != 0 ? used : _muxer.FillRx(rx);
        }
        else
        {
            uint used = _muxer.FillRx(rx);
            return used != 0 ? used : _relay.FillRx(rx);
        }
    }

    private void ProcessEvent()
    {
        const int q = VsockQueueIndex.Event;
        GuestMemory? memory = _memory;
        if (!_pendingTransportReset || memory is null || !_running[q] || _broken[q])
        {
            return;
        }

        VirtQueue queue = _queues[q];
        for (int attempt = 0; attempt < MaxQueueSize && _pendingTransportReset; attempt++)
        {
            if (!queue.TryPopChain(memory, out DescriptorChain chain, out QueueError error))
            {
                if (error != QueueError.None)
                {
                    Break(q, error);
                    return;
                }

                queue.EnableNotification(memory, out bool hasMore);
                if (hasMore)
                {
                    continue;
                }

                return;
            }

            uint written = 0;
            while (chain.TryNext(out Descriptor descriptor, out _))
            {
                if (descriptor.IsWriteOnly && descriptor.Length >= sizeof(uint)
                    && memory.WriteU32(descriptor.Address, (uint)VsockEventId.TransportReset) == MemoryError.None)
                {
                    written = sizeof(uint);
                    break;
                }
            }

            queue.AddUsed(memory, chain.HeadIndex, written);
            if (written != 0)
            {
                _pendingTransportReset = false;
                Interlocked.Increment(ref Metrics.EventsSentField);
            }
        }

        Notify(q, memory);
    }

    private void Publish(int q, GuestMemory memory)
    {
        _queues[q].PublishUsed(memory);
        Notify(q, memory);
    }

    private void Notify(int q, GuestMemory memory)
    {
        if (_queues[q].NeedsNotification(memory))
        {
            Interlocked.Increment(ref Metrics.NotificationsField);
            _notifier.NotifyQueue(q);
        }
    }

    private void Break(int q, QueueError error)
    {
        _broken[q] = true;
        if (_logger is not null)
        {
            LogQueueStopped(_logger, q, error);
        }
    }

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

    [LoggerMessage(EventId = 201, Level = LogLevel.Error, Message = "vsock: queue {Queue} stopped: {Error}")]
    private static partial void LogQueueStopped(ILogger logger, int queue, QueueError error);
}
