using System.Diagnostics;
using Virtio.Vsock.Device.Siblings;

namespace Virtio.Vsock.Device;

/// <summary>
/// The connection engine's switchboard: routes each guest packet to its connection, creates connections
/// (guest REQUEST, host connect), applies the RST rules for packets nobody owns, and decides which
/// connection fills the next RX buffer.
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> the connection table keyed by <see cref="ConnectionKey"/>, the fair round-robin queue of
/// connections with packets to send, the bounded ring of RSTs owed for unknown connections, the connection
/// timers and host-side port allocation.</para>
/// <para><b>RST rules:</b> an unknown or un-negotiated <c>type</c>, a REQUEST nobody can take (no backend
/// answer, connection limit), and any packet of an unknown connection get RST, unless the packet is itself
/// an RST. Packets with a source CID other than the guest's are dropped (counted). Packets for a CID other
/// than the host's go to the <see cref="SiblingRelay"/> when the device has one (its refusals are answered
/// with RST here too), else get RST.</para>
/// <para><b>Must never:</b> touch queues or guest memory beyond the packet objects it is handed, grow without
/// bound (connections are capped, the RST ring is fixed and TX pauses while it is full), or run on any
/// thread but the device loop.</para>
/// </remarks>
internal sealed partial class VsockMuxer
{
    private readonly Dictionary<ConnectionKey, VsockConnection> _connections = [];
    private int _publishedConnectionCount;
    private readonly Queue<VsockConnection> _rxQueue = new();
    private readonly DeadlineQueue<VsockConnection> _timers = new(static (connection, deadline) => connection.State != ConnectionState.Closed && connection.Deadline == deadline);
    private readonly VsockHeader[] _pendingResets;
    private VsockConnection? _keepOwner;
    private int _resetFirst;
    private int _resetCount;
    private uint _nextLocalPort = 1u << 30;

    /// <summary>Creates the muxer.</summary>
    /// <param name="options">The device options (validated).</param>
    /// <param name="backend">The host backend.</param>
    /// <param name="loop">The device loop.</param>
    /// <param name="metrics">The device counters.</param>
    public VsockMuxer(VsockDeviceOptions options, IVsockBackend backend, DeviceEventLoop loop, VsockMetrics metrics)
    {
        Options = options;
        Backend = backend;
        Loop = loop;
        Metrics = metrics;
        _pendingResets = new VsockHeader[options.MaxPendingResets];
        Budget = new BufferBudget(options.MaxBufferedBytes);
    }

    /// <summary>The bytes this device may hold for its guest (host connection buffers and sibling payloads).</summary>
    public BufferBudget Budget { get; }

    /// <summary>The options.</summary>
    public VsockDeviceOptions Options { get; }

    /// <summary>The backend.</summary>
    public IVsockBackend Backend { get; }

    /// <summary>The loop.</summary>
    public DeviceEventLoop Loop { get; }

    /// <summary>The counters.</summary>
    public VsockMetrics Metrics { get; }

    /// <summary>The negotiated feature word (decides which socket types are valid).</summary>
    public ulong Features { get; set; }

    /// <summary>Where packets for sibling guests go, or <see langword="null"/> when the guest reaches only the host.</summary>
    public SiblingRelay? Siblings { get; set; }

    /// <summary>Whether the reset ring is full: TX must pause until RX drains it.</summary>
    public bool ResetQueueFull => _resetCount == _pendingResets.Length;

    /// <summary>The number of live connections (any state but closed).</summary>
    public int ConnectionCount => _connections.Count;

    /// <summary>
    /// <see cref="ConnectionCount"/> for other threads: published whenever the table changes, so a packet that
    /// shows a connection ended (an RST the guest read) is never seen before the count that leaves it out.
    /// </summary>
    public int PublishedConnectionCount => Volatile.Read(ref _publishedConnectionCount);

    /// <summary>Whether anything waits for an RX buffer.</summary>
    public bool HasRxWork => _resetCount > 0 || _rxQueue.Count > 0;

    /// <summary>Stream data packets of one connection held back within a TX batch to be written together.</summary>
    public TxRun TxRun { get; } = new();

    /// <summary>The earliest timer deadline, or <see cref="long.MaxValue"/>.</summary>
    public long NextDeadline => _timers.NextDeadline;

    // ---------------------------------------------------------------- TX

    /// <summary>
    /// Handles one packet the guest sent. A stream data packet may be kept in <see cref="TxRun"/> to be written with
    /// the next ones: then <paramref name="packet"/> is replaced by a spare for the device's next chain, and the
    /// device must call <see cref="FlushTxRun"/> before it publishes the batch's used elements.
    /// </summary>
    /// <param name="packet">The parsed packet; on return, the packet to parse the next chain into.</param>
    /// <param name="now">The current timestamp.</param>
    public void HandleTx(ref VsockPacket packet, long now)
    {
        if (TxRun.Count > 0 && !ExtendsTxRun(packet))
        {
            FlushTxRun();
        }

        HandleTx(packet, now);
        if (_keepOwner is { } owner)
        {
            _keepOwner = null;
            TxRun.Keep(owner, ref packet);
        }
    }

    /// <summary>Called by a connection from its packet handler: keep the packet being handled in <see cref="TxRun"/>.</summary>
    /// <param name="owner">The connection (it checked <see cref="TxRun.CanJoin"/>).</param>
    public void KeepTxPacket(VsockConnection owner) => _keepOwner = owner;

    /// <summary>Writes the held run to its connection's host endpoint (one gathering write) and empties it.</summary>
    public void FlushTxRun()
    {
        if (TxRun.Count == 0)
        {
            return;
        }

        VsockConnection owner = TxRun.Owner!;
        try
        {
            owner.WriteTxRun(TxRun.Packets, TxRun.Bytes);
        }
        catch (Exception exception)
        {
            owner.OnFault(exception);
        }
        finally
        {
            TxRun.Clear();
        }
    }

    /// <summary>Whether <paramref name="packet"/> is the held run's connection's next data packet (and may join it).</summary>
    private bool ExtendsTxRun(VsockPacket packet)
    {
        VsockConnection owner = TxRun.Owner!;
        return packet.Op == VsockOp.Rw && TxRun.Count < TxRun.MaxPackets && packet.Type == owner.Type
            && packet.SrcCid == Options.GuestCid && packet.DstCid == VsockCid.Host
            && new ConnectionKey(packet.DstCid, packet.DstPort, packet.SrcCid, packet.SrcPort) == owner.Key;
    }

    private void HandleTx(VsockPacket packet, long now)
    {
        Interlocked.Increment(ref Metrics.TxPacketsField);
        ConnectionLog.GuestPacket(Options.Logger, packet);
        if (packet.SrcCid != Options.GuestCid)
        {
            Interlocked.Increment(ref Metrics.DroppedPacketsField);
            return;
        }

        VsockOp op = packet.Op;
        VsockType type = packet.Type;
        if (!TypeAllowed(type))
        {
            ReplyRst(packet);
            return;
        }

        if (packet.DstCid != VsockCid.Host)
        {
            if (Siblings is null || !Siblings.HandleTx(packet, now))
            {
                ReplyRst(packet);
            }

            return;
        }

        var key = new ConnectionKey(packet.DstCid, packet.DstPort, packet.SrcCid, packet.SrcPort);
        if (_connections.TryGetValue(key, out VsockConnection? connection))
        {
            if (connection.Type != type)
            {
                if (op != VsockOp.Rst)
                {
                    connection.Reset(refused: false, "the guest changed the socket type");
                }

                return;
            }

            try
            {
                connection.HandleGuestPacket(packet, now);
            }
            catch (Exception exception)
            {
                _keepOwner = null;
                connection.OnFault(exception);
            }

            return;
        }

        if (op != VsockOp.Request)
        {
            ReplyRst(packet);
            return;
        }

        if (_connections.Count >= Options.MaxConnections)
        {
            Interlocked.Increment(ref Metrics.ConnectionsRefusedField);
            ReplyRst(packet);
            return;
        }

        connection = new VsockConnection(this, key, type, ConnectionState.Accepting);
        _connections.Add(key, connection);
        PublishConnectionCount();
        ConnectionLog.Opened(Options.Logger, key, type, guestInitiated: true);
        VsockHeader header = packet.Header;
        try
        {
            connection.StartAccepting(in header, now);
        }
        catch (Exception exception)
        {
            // The backend threw while deciding: as a refusal, for this connection only.
            connection.OnFault(exception);
        }
    }

    /// <summary>Whether <paramref name="type"/> was negotiated.</summary>
    /// <param name="type">A socket type from a header.</param>
    /// <returns><see langword="true"/> for stream or seqpacket when the guest accepted that feature.</returns>
    public bool TypeAllowed(VsockType type) => type switch
    {
        VsockType.Stream => VsockFeatures.StreamEnabled(Features),
        VsockType.SeqPacket => VsockFeatures.SeqPacketEnabled(Features),
        _ => false,
    };

    /// <summary>Queues an RST answering <paramref name="packet"/>, unless it is an RST itself.</summary>
    /// <param name="packet">The offending packet.</param>
    private void ReplyRst(VsockPacket packet)
    {
        if (packet.Op == VsockOp.Rst)
        {
            Interlocked.Increment(ref Metrics.DroppedPacketsField);
            return;
        }

        ConnectionLog.Unowned(Options.Logger, packet);
        if (ResetQueueFull)
        {
            // The device checks before each TX chain, so this happens only if one chain needs two RSTs.
            Interlocked.Increment(ref Metrics.DroppedPacketsField);
            return;
        }

        int index = (_resetFirst + _resetCount) % _pendingResets.Length;
        _pendingResets[index] = new VsockHeader
        {
            SrcCid = packet.DstCid,
            DstCid = packet.SrcCid,
            SrcPort = packet.DstPort,
            DstPort = packet.SrcPort,
            Type = packet.Type,
            Op = VsockOp.Rst,
        };
        _resetCount++;
    }

    // ---------------------------------------------------------------- host connect

    /// <summary>Starts a host-initiated connection (on the loop).</summary>
    /// <param name="guestPort">The guest port.</param>
    /// <param name="type">The socket type.</param>
    /// <param name="endpoint">The host endpoint.</param>
    /// <param name="completion">Completed with the local port, or failed.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <param name="running">Whether the device's queues run.</param>
    public void Connect(uint guestPort, VsockType type, IVsockEndpoint endpoint, IVsockConnectCompletion completion, CancellationToken cancellationToken, bool running)
    {
        if (!running || !TypeAllowed(type))
        {
            AbandonConnect(endpoint, completion, new VsockConnectException(VsockConnectFailure.NotRunning, "The vsock device is not running or the socket type is not negotiated."));
            return;
        }

        if (_connections.Count >= Options.MaxConnections)
        {
            Interlocked.Increment(ref Metrics.ConnectionsRefusedField);
            AbandonConnect(endpoint, completion, new VsockConnectException(VsockConnectFailure.NoResources, "The vsock connection limit is reached."));
            return;
        }

        ConnectionKey key = default;
        bool found = false;
        for (int attempt = 0; attempt < 4096 && !found; attempt++)
        {
            uint port = _nextLocalPort++;
            if (_nextLocalPort == uint.MaxValue)
            {
                _nextLocalPort = 1u << 30;
            }

            key = new ConnectionKey(VsockCid.Host, port, Options.GuestCid, guestPort);
            found = !_connections.ContainsKey(key);
        }

        if (!found)
        {
            AbandonConnect(endpoint, completion, new VsockConnectException(VsockConnectFailure.NoResources, "No free host port."));
            return;
        }

        var connection = new VsockConnection(this, key, type, ConnectionState.Connecting);
        _connections.Add(key, connection);
        PublishConnectionCount();
        try
        {
            ConnectionLog.Opened(Options.Logger, key, type, guestInitiated: false);
            connection.StartConnecting(endpoint, completion, cancellationToken, Stopwatch.GetTimestamp());
        }
        catch (Exception exception)
        {
            // The connection holds the endpoint and the completion now: its reset closes the one and fails the other, once.
            connection.OnFault(exception);
        }
    }

    /// <summary>
    /// A host connect that never became a connection: closes its endpoint (one that throws while closing cannot hurt
    /// the loop) and tells its completion why. Safe on any thread (the device also uses it when the loop is gone).
    /// </summary>
    /// <param name="endpoint">The host endpoint offered.</param>
    /// <param name="completion">The connect's completion.</param>
    /// <param name="error">Why the connect failed.</param>
    public void AbandonConnect(IVsockEndpoint endpoint, IVsockConnectCompletion completion, Exception error)
    {
        CloseQuietly(endpoint, abort: true, owner: null);
        completion.OnFailed(error);
    }

    /// <summary>
    /// Closes a host endpoint so that nothing it throws reaches the caller: an endpoint that throws while closing is
    /// counted in <see cref="VsockMetrics.EndpointFaults"/> and logged. The one place the device closes an endpoint
    /// it no longer trusts to close cleanly (a connection's endpoint, an abandoned connect's). Safe on any thread.
    /// </summary>
    /// <param name="endpoint">The endpoint, or <see langword="null"/> (nothing to close).</param>
    /// <param name="abort">Close abortively.</param>
    /// <param name="owner">The connection the endpoint belongs to, for the log; <see langword="null"/> for a host
    /// connect that never became a connection.</param>
    public void CloseQuietly(IVsockEndpoint? endpoint, bool abort, ConnectionKey? owner)
    {
        if (endpoint is null)
        {
            return;
        }

        try
        {
            endpoint.Close(abort);
        }
        catch (Exception exception)
        {
            Interlocked.Increment(ref Metrics.EndpointFaultsField);
            Trace.TraceWarning(
                "vsock: host endpoint of {0} threw while closing: {1}",
                owner is { } key ? $"connection {key}" : "a host connect that never became a connection",
                exception);
        }
    }

    // ---------------------------------------------------------------- RX

    /// <summary>Queues <paramref name="connection"/> for RX if it has something to send and is not queued.</summary>
    /// <param name="connection">The connection.</param>
    public void ScheduleRx(VsockConnection connection)
    {
        if (!connection.InRxQueue && connection.HasRxWork())
        {
            connection.InRxQueue = true;
            connection.RxQueuedSince = Environment.TickCount64;
            _rxQueue.Enqueue(connection);
        }
    }

    /// <summary>Fills one RX buffer with the next packet owed to the guest.</summary>
    /// <param name="rx">A parsed RX packet.</param>
    /// <param name="batch">More RX buffers a connection's burst of stream data may fill too (see <see cref="RxBatch"/>), or null.</param>
    /// <returns>The used length, or 0 when nothing was ready (keep the buffer for later).</returns>
    public uint FillRx(VsockPacket rx, RxBatch? batch = null)
    {
        if (_resetCount > 0)
        {
            VsockHeader header = _pendingResets[_resetFirst];
            _resetFirst = (_resetFirst + 1) % _pendingResets.Length;
            _resetCount--;
            rx.SetHeader(in header);
            Interlocked.Increment(ref Metrics.RstSentField);
            return VsockHeader.Size;
        }

        int attempts = _rxQueue.Count;
        while (attempts-- > 0 && _rxQueue.TryDequeue(out VsockConnection? connection))
        {
            connection.InRxQueue = false;
            uint used;
            try
            {
                used = connection.TryProduceRx(rx, batch);
            }
            catch (Exception exception)
            {
                connection.OnFault(exception);
                used = 0;
            }

            ScheduleRx(connection);
            if (used != 0)
            {
                ConnectionLog.DevicePacket(Options.Logger, rx);
                return used;
            }
        }

        return 0;
    }

    // ---------------------------------------------------------------- timers and removal

    /// <summary>Adds a timer entry (stale entries are skipped when they fire).</summary>
    /// <param name="connection">The connection.</param>
    /// <param name="deadline">Its deadline.</param>
    public void AddTimer(VsockConnection connection, long deadline) => _timers.Add(connection, deadline, _connections.Count);

    /// <summary>Fires every due timer.</summary>
    /// <param name="now">The current timestamp.</param>
    public void RunTimers(long now)
    {
        while (_timers.TryTakeDue(now, out VsockConnection connection))
        {
            try
            {
                // A closing connection's timer retries the host endpoint (VsockConnection.OnTimer), which may throw.
                connection.OnTimer();
            }
            catch (Exception exception)
            {
                connection.OnFault(exception);
            }
        }
    }

    /// <summary>Drops a closed connection from the table.</summary>
    /// <param name="connection">The connection.</param>
    public void Forget(VsockConnection connection)
    {
        if (_connections.TryGetValue(connection.Key, out VsockConnection? current) && ReferenceEquals(current, connection))
        {
            _connections.Remove(connection.Key);
            PublishConnectionCount();
        }
    }

    private void PublishConnectionCount() => Volatile.Write(ref _publishedConnectionCount, _connections.Count);

    /// <summary>Probes every established connection with a CREDIT_REQUEST (see <see cref="VsockConnection.ProbeGuest"/>).</summary>
    public void ProbeAll()
    {
        foreach (VsockConnection connection in _connections.Values)
        {
            connection.ProbeGuest();
        }
    }

    /// <summary>Removes every connection without telling the guest, and drops owed RSTs (transport or device reset).</summary>
    public void ResetAll()
    {
        var all = new List<VsockConnection>(_connections.Values);
        foreach (VsockConnection connection in all)
        {
            connection.Remove(orderly: false);
        }

        _connections.Clear();
        PublishConnectionCount();
        _rxQueue.Clear();
        _timers.Clear();
        _resetCount = 0;
        _resetFirst = 0;
    }
}
