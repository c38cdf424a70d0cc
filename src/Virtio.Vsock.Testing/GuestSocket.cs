namespace Virtio.Vsock.Testing;

/// <summary>
/// A simulated guest vsock socket, behaving like Linux's <c>virtio_transport_common</c>: it sends RW only
/// within the device's credit (unless told to misbehave), tells the device its <c>buf_alloc</c>/<c>fwd_cnt</c>
/// on every packet, sends CREDIT_UPDATE when the device's view of its free space runs low after the
/// application read, answers CREDIT_REQUEST, answers a SHUTDOWN with both flags by RST once its data is
/// read, and closes with SHUTDOWN(both) then waits for RST.
/// </summary>
/// <remarks>All state is guarded by the simulator's lock; application methods are thread-safe.</remarks>
public sealed class GuestSocket
{
    private const uint LowCreditThreshold = 64 * 1024;

    private readonly GuestSimulator _sim;
    private readonly SegmentQueue _rx = new();
    private readonly SegmentQueue _tx = new();
    private TaskCompletionSource? _readWaiter;
    private TaskCompletionSource? _writeWaiter;
    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private uint _rxCnt;
    private uint _fwdCnt;
    private uint _lastSentFwdCnt;
    private uint _peerBufAlloc;
    private uint _peerFwdCnt;
    private uint _txCnt;
    private bool _needRequest;
    private bool _needResponse;
    private bool _needCreditUpdate;
    private bool _needRst;
    private bool _rstOrderly;
    private ShutdownFlags _needShutdown;
    private ShutdownFlags _sentShutdown;
    private ShutdownFlags _peerShutdown;
    private int _pendingMessages;

    internal GuestSocket(GuestSimulator simulator, VsockType type, uint localPort, ulong peerCid, uint peerPort, GuestSocketState state)
    {
        _sim = simulator;
        Type = type;
        LocalPort = localPort;
        PeerCid = peerCid;
        PeerPort = peerPort;
        State = state;
        BufAlloc = simulator.Options.BufferSize;
    }

    /// <summary>Stream or seqpacket.</summary>
    public VsockType Type { get; }

    /// <summary>The guest port.</summary>
    public uint LocalPort { get; }

    /// <summary>The peer's CID: the host (2) or a sibling guest.</summary>
    public ulong PeerCid { get; }

    /// <summary>The peer's port.</summary>
    public uint PeerPort { get; }

    /// <summary>The state.</summary>
    public GuestSocketState State { get; private set; }

    /// <summary>Whether the connection ended with an RST from the device (or a local abort).</summary>
    public bool WasReset { get; private set; }

    /// <summary>The receive buffer advertised to the device.</summary>
    public uint BufAlloc { get; }

    /// <summary>Misbehave: send RW regardless of the device's credit.</summary>
    public bool IgnoreCredit { get; set; }

    /// <summary>RW packets the device sent beyond the credit this socket gave (a device bug).</summary>
    public int CreditViolations { get; private set; }

    /// <summary>RW packets received.</summary>
    public long RwPacketsReceived { get; private set; }

    /// <summary>The smallest RW payload received when more data followed within a short window (trickling measure).</summary>
    public long SmallRwPacketsReceived { get; private set; }

    /// <summary>The shutdown flags the device sent.</summary>
    public ShutdownFlags PeerShutdown => _peerShutdown;

    /// <summary>Bytes received and not yet read by the application.</summary>
    public long BufferedReceiveBytes
    {
        get
        {
            lock (_sim.Sync)
            {
                return _rx.Count;
            }
        }
    }

    /// <summary>Completes when the connection is closed (orderly or reset).</summary>
    public Task Completion => _closed.Task;

    internal Task ConnectedTask => _connected.Task;

    internal bool InTxQueue { get; set; }

    // ---------------------------------------------------------------- application API

    /// <summary>Queues bytes for sending; waits while the socket's send buffer is full.</summary>
    /// <param name="data">The bytes.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>A task.</returns>
    public Task SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) => SendCoreAsync(data, SeqPacketFlags.None, cancellationToken);

    /// <summary>SEQPACKET: sends one message (EOM), optionally ending a record (EOR).</summary>
    /// <param name="message">The message.</param>
    /// <param name="endOfRecord">Whether it ends a record.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>A task.</returns>
    public Task SendMessageAsync(ReadOnlyMemory<byte> message, bool endOfRecord = false, CancellationToken cancellationToken = default) =>
        SendCoreAsync(message, endOfRecord ? SeqPacketFlags.EndOfMessage | SeqPacketFlags.EndOfRecord : SeqPacketFlags.EndOfMessage, cancellationToken);

    private async Task SendCoreAsync(ReadOnlyMemory<byte> data, SeqPacketFlags end, CancellationToken cancellationToken)
    {
        int offset = 0;
        int limit = _sim.Options.SendBufferSize;
        while (true)
        {
            Task wait;
            lock (_sim.Sync)
            {
                if (State != GuestSocketState.Connected || (_sentShutdown & ShutdownFlags.Send) != 0 || (_needShutdown & ShutdownFlags.Send) != 0)
                {
                    throw new GuestSocketException(WasReset ? "Connection reset." : "Socket is not connected for sending.");
                }

                int room = (int)Math.Max(0, limit - _tx.Count);
                int chunk = Math.Min(room, data.Length - offset);
                bool last = offset + chunk == data.Length;
                if (chunk > 0 || (last && end != SeqPacketFlags.None))
                {
                    if (end != SeqPacketFlags.None)
                    {
                        // Messages are appended whole (split across TX packets by the pump).
                        if (room < data.Length && _tx.Count > 0)
                        {
                            chunk = 0;
                        }
                        else
                        {
                            _tx.Append(data.Span, end);
                            _pendingMessages++;
                            _sim.ScheduleTx(this);
                            return;
                        }
                    }
                    else
                    {
                        _tx.Append(data.Span.Slice(offset, chunk), SeqPacketFlags.None);
                        offset += chunk;
                        _sim.ScheduleTx(this);
                        if (offset == data.Length)
                        {
                            return;
                        }
                    }
                }

                _writeWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _writeWaiter.Task;
            }

            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Reads received bytes; 0 once the device shut down sending (or the connection closed) and all was read.</summary>
    /// <param name="buffer">Where the bytes go.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>Bytes read.</returns>
    /// <exception cref="GuestSocketException">The connection was reset with nothing left to read.</exception>
    public async Task<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        (await ReceiveMessageAsync(buffer, cancellationToken).ConfigureAwait(false)).Count;

    /// <summary>Reads received bytes, never across a SEQPACKET message end; says which end was reached.</summary>
    /// <param name="buffer">Where the bytes go.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>Bytes read and the message end reached (none for streams / partial messages).</returns>
    public async Task<(int Count, SeqPacketFlags End)> ReceiveMessageAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            Task wait;
            lock (_sim.Sync)
            {
                if (_rx.HasData)
                {
                    int count = _rx.Read(buffer.Span, Type == VsockType.SeqPacket, out SeqPacketFlags end);
                    _fwdCnt += (uint)count;
                    uint peerView = BufAlloc - (_rxCnt - _lastSentFwdCnt);
                    if (peerView < Math.Min(LowCreditThreshold, BufAlloc / 2) && _fwdCnt != _lastSentFwdCnt && State == GuestSocketState.Connected)
                    {
                        _needCreditUpdate = true;
                        _sim.ScheduleTx(this);
                    }

                    CheckPeerClosed();
                    return (count, end);
                }

                if ((_peerShutdown & ShutdownFlags.Send) != 0 || (State == GuestSocketState.Closed && !WasReset) || State == GuestSocketState.Closing)
                {
                    return (0, SeqPacketFlags.None);
                }

                if (State == GuestSocketState.Closed)
                {
                    throw new GuestSocketException("Connection reset.");
                }

                _readWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                wait = _readWaiter.Task;
            }

            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Half- or full shutdown (SHUTDOWN with the given flags, after queued data).</summary>
    /// <param name="flags">Receive and/or send.</param>
    public void Shutdown(ShutdownFlags flags)
    {
        lock (_sim.Sync)
        {
            if (State != GuestSocketState.Connected)
            {
                return;
            }

            _needShutdown |= flags & ~_sentShutdown;
            _sim.ScheduleTx(this);
        }
    }

    /// <summary>Closes like Linux close(): SHUTDOWN(both) after queued data, then waits for the device's RST (or sends one after the close timeout).</summary>
    /// <returns>A task completing when the connection is over.</returns>
    public async Task CloseAsync()
    {
        lock (_sim.Sync)
        {
            if (State is GuestSocketState.Connected)
            {
                _needShutdown |= ShutdownFlags.Both & ~_sentShutdown;
                if (_needShutdown == ShutdownFlags.None)
                {
                    _needShutdown = ShutdownFlags.Both;
                }

                _sim.ScheduleTx(this);
            }
            else if (State is GuestSocketState.Connecting)
            {
                Abort();
                return;
            }
        }

        try
        {
            await _closed.Task.WaitAsync(_sim.Options.CloseTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Abort();
        }
    }

    /// <summary>Sends RST and forgets the connection.</summary>
    public void Abort()
    {
        lock (_sim.Sync)
        {
            if (State == GuestSocketState.Closed)
            {
                return;
            }

            _needRst = true;
            _sim.ScheduleTx(this);
        }
    }

    // ---------------------------------------------------------------- simulator side (under the lock)

    internal void StartConnect() => _needRequest = true;

    internal void StartAccepted(in VsockHeader request)
    {
        UpdateCredit(request);
        _needResponse = true;
        _connected.TrySetResult();
    }

    internal void OnConnectTimeout()
    {
        if (State == GuestSocketState.Connecting)
        {
            _needRst = true;
            _connected.TrySetException(new GuestSocketException($"Connect to {PeerCid}:{PeerPort} timed out."));
            _sim.ScheduleTx(this);
        }
    }

    internal void OnPacket(in VsockHeader header, ReadOnlySpan<byte> payload)
    {
        if (header.Op == VsockOp.Rst)
        {
            bool orderly = State == GuestSocketState.Closing;
            if (State == GuestSocketState.Connecting)
            {
                _connected.TrySetException(new GuestSocketException($"Connection to {PeerCid}:{PeerPort} refused."));
            }

            Finish(reset: !orderly);
            return;
        }

        if (header.Type != Type)
        {
            Reset();
            return;
        }

        UpdateCredit(header);
        switch (header.Op)
        {
            case VsockOp.Response when State == GuestSocketState.Connecting:
                State = GuestSocketState.Connected;
                _connected.TrySetResult();
                _sim.ScheduleTx(this);
                break;
            case VsockOp.Rw when State is GuestSocketState.Connected or GuestSocketState.Closing:
                RwPacketsReceived++;
                if (payload.Length < 64)
                {
                    SmallRwPacketsReceived++;
                }

                if ((uint)payload.Length > BufAlloc - (_rxCnt - _fwdCnt))
                {
                    CreditViolations++;
                }

                _rxCnt += (uint)payload.Length;
                SeqPacketFlags end = Type == VsockType.SeqPacket ? (SeqPacketFlags)(header.Flags & 3) : SeqPacketFlags.None;
                if (payload.Length > 0 || end != SeqPacketFlags.None)
                {
                    _rx.Append(payload, end);
                }

                WakeReader();
                break;
            case VsockOp.CreditUpdate:
                _sim.ScheduleTx(this);
                break;
            case VsockOp.CreditRequest:
                _needCreditUpdate = true;
                _sim.ScheduleTx(this);
                break;
            case VsockOp.Shutdown:
                _peerShutdown |= (ShutdownFlags)(header.Flags & 3);
                WakeReader();
                WakeWriter();
                CheckPeerClosed();
                break;
            default:
                Reset();
                break;
        }
    }

    private void CheckPeerClosed()
    {
        // Linux: the peer shut down both ways and nothing is left to read -> RST and close.
        if (_peerShutdown == ShutdownFlags.Both && !_rx.HasData && State == GuestSocketState.Connected)
        {
            _needRst = true;
            _rstOrderly = true;
            _sim.ScheduleTx(this);
        }
    }

    private void UpdateCredit(in VsockHeader header)
    {
        bool grew = header.BufAlloc != _peerBufAlloc || header.FwdCnt != _peerFwdCnt;
        _peerBufAlloc = header.BufAlloc;
        _peerFwdCnt = header.FwdCnt;
        if (grew && State == GuestSocketState.Connected)
        {
            // Like Linux's sk_write_space: credit carried by any packet (an RW included) wakes a
            // sender that ran out of it; the device need not send a separate CREDIT_UPDATE.
            _sim.ScheduleTx(this);
        }
    }

    private void Reset()
    {
        _needRst = true;
        _sim.ScheduleTx(this);
    }

    internal void Finish(bool reset)
    {
        if (State == GuestSocketState.Closed)
        {
            return;
        }

        WasReset = reset;
        State = GuestSocketState.Closed;
        _tx.Clear();
        _connected.TrySetException(new GuestSocketException("Connection reset."));
        _ = _connected.Task.Exception;
        _closed.TrySetResult();
        WakeReader();
        WakeWriter();
        _sim.Forget(this);
    }

    private void WakeReader()
    {
        TaskCompletionSource? waiter = _readWaiter;
        _readWaiter = null;
        waiter?.TrySetResult();
    }

    private void WakeWriter()
    {
        TaskCompletionSource? waiter = _writeWaiter;
        _writeWaiter = null;
        waiter?.TrySetResult();
    }

    internal bool HasTxWork()
    {
        if (_needRst || _needRequest || _needResponse || _needCreditUpdate)
        {
            return true;
        }

        if (State != GuestSocketState.Connected)
        {
            return false;
        }

        if (_tx.HasData && (IgnoreCredit || PeerFree() > 0 || NextIsEmptyMessage()))
        {
            return true;
        }

        return _needShutdown != ShutdownFlags.None && !_tx.HasData;
    }

    private bool NextIsEmptyMessage() => false;

    private uint PeerFree()
    {
        uint inFlight = _txCnt - _peerFwdCnt;
        return inFlight > _peerBufAlloc ? 0 : _peerBufAlloc - inFlight;
    }

    /// <summary>Builds the next packet; returns false when none.</summary>
    internal bool TryBuildPacket(Span<byte> payload, out VsockHeader header, out int length)
    {
        length = 0;
        header = default;
        VsockOp op;
        uint flags = 0;
        if (_needRst)
        {
            _needRst = false;
            op = VsockOp.Rst;
            Finish(reset: !_rstOrderly);
        }
        else if (_needRequest)
        {
            _needRequest = false;
            op = VsockOp.Request;
        }
        else if (_needResponse)
        {
            _needResponse = false;
            op = VsockOp.Response;
        }
        else if (State == GuestSocketState.Connected && _tx.HasData && (IgnoreCredit || PeerFree() > 0))
        {
            int max = IgnoreCredit ? payload.Length : (int)Math.Min((uint)payload.Length, PeerFree());
            length = _tx.TakeForPacket(payload[..max], out SeqPacketFlags end);
            if (end != SeqPacketFlags.None)
            {
                _pendingMessages--;
                flags = (uint)end;
            }

            _txCnt += (uint)length;
            op = VsockOp.Rw;
            WakeWriter();
        }
        else if (_needCreditUpdate)
        {
            _needCreditUpdate = false;
            op = VsockOp.CreditUpdate;
        }
        else if (_needShutdown != ShutdownFlags.None && !_tx.HasData && State == GuestSocketState.Connected)
        {
            _sentShutdown |= _needShutdown;
            _needShutdown = ShutdownFlags.None;
            flags = (uint)_sentShutdown;
            op = VsockOp.Shutdown;
            if (_sentShutdown == ShutdownFlags.Both)
            {
                State = GuestSocketState.Closing;
                WakeReader();
            }
        }
        else
        {
            return false;
        }

        if (op != VsockOp.Rw)
        {
            _needCreditUpdate &= op != VsockOp.CreditUpdate;
        }

        header = new VsockHeader
        {
            SrcCid = _sim.GuestCid,
            DstCid = PeerCid,
            SrcPort = LocalPort,
            DstPort = PeerPort,
            Len = (uint)length,
            Type = Type,
            Op = op,
            Flags = flags,
            BufAlloc = BufAlloc,
            FwdCnt = _fwdCnt,
        };
        _lastSentFwdCnt = _fwdCnt;
        return true;
    }
}
