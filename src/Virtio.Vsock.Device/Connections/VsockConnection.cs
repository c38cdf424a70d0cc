using System.Diagnostics;

namespace Virtio.Vsock.Device;

/// <summary>
/// One vsock connection between a guest socket and a host endpoint: its state machine, credit-based
/// flow control in both directions and the replies it owes the guest.
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> the connection's state, its credit counters (ours: <c>buf_alloc</c>, <c>fwd_cnt</c>,
/// bytes received; the guest's: <c>buf_alloc</c>, <c>fwd_cnt</c> and bytes we sent, all wrapping u32), the
/// flags of packets it still has to send (RESPONSE, REQUEST, CREDIT_UPDATE, CREDIT_REQUEST, SHUTDOWN, RST:
/// at most one of each, so replies the guest provokes while RX is full take O(1) memory), its
/// <see cref="TxBuffer"/> and its host endpoint.</para>
/// <para><b>Must never:</b> send RW beyond the guest's credit, or tiny RW packets while the guest's credit is
/// low (it waits and asks for credit instead); hold more guest bytes than the <c>buf_alloc</c> it advertised
/// (a guest that sends beyond its credit is reset); answer an RST with an RST; block or throw on the loop
/// (endpoint I/O returns statuses); be touched from another thread except through <see cref="Signal"/>,
/// <see cref="Accept"/>, <see cref="Refuse"/> and the <see cref="IVsockEndpointEvents"/> methods.</para>
/// <para><b>Does not:</b> parse chains or touch queues (the device does), or find connections (the muxer does).</para>
/// </remarks>
internal sealed class VsockConnection : IVsockIncomingConnection, IVsockEndpointEvents, ISignalSource
{
    private const int SignalReadable = 1;
    private const int SignalWritable = 2;
    private const int SignalAnswered = 4;
    private const int SignalCancelled = 8;

    private const int AnswerNone = 0;
    private const int AnswerAccepted = 1;
    private const int AnswerRefused = 2;
    private const int AnswerExpired = 3;

    private readonly VsockMuxer _muxer;
    private readonly TxBuffer _txBuffer;
    private readonly uint _bufAlloc;
    private IVsockEndpoint? _endpoint;
    private IVsockEndpoint? _answeredEndpoint;
    private TaskCompletionSource<uint>? _connectCompletion;
    private CancellationTokenRegistration _cancellation;

    // Credit, wrapping u32 arithmetic throughout.
    private uint _fwdCnt;
    private uint _rxCnt;
    private uint _lastSentFwdCnt;
    private uint _peerBufAlloc;
    private uint _peerFwdCnt;
    private uint _txCnt;

    // Packets owed to the guest.
    private bool _pendingRequest;
    private bool _pendingResponse;
    private bool _pendingRst;
    private bool _pendingCreditUpdate;
    private bool _pendingCreditRequest;
    private ShutdownFlags _pendingShutdown;
    private bool _rstIsOrderly;

    // Shutdown state.
    private ShutdownFlags _peerShutdown;
    private ShutdownFlags _sentShutdown;
    private bool _endpointSendShut;

    // Host endpoint state.
    private bool _hostReadable;
    private bool _hostEof;
    private bool _readRequested;
    private bool _writeRequested;
    private bool _creditRequested;
    private bool _creditAnswered; // the guest answered our CREDIT_REQUEST: send what its credit allows, however small

    private int _signals;
    private int _queued;
    private int _answer;

    /// <summary>Creates a connection.</summary>
    /// <param name="muxer">The owning muxer.</param>
    /// <param name="key">The key.</param>
    /// <param name="type">Stream or seqpacket.</param>
    /// <param name="state">The initial state (<see cref="ConnectionState.Accepting"/> or <see cref="ConnectionState.Connecting"/>).</param>
    public VsockConnection(VsockMuxer muxer, ConnectionKey key, VsockType type, ConnectionState state)
    {
        _muxer = muxer;
        Key = key;
        Type = type;
        State = state;
        _bufAlloc = muxer.Options.BufferSize;
        _txBuffer = new TxBuffer((int)_bufAlloc, type == VsockType.SeqPacket ? muxer.Options.MaxBufferedMessages : 0);
    }

    /// <summary>The key.</summary>
    public ConnectionKey Key { get; }

    /// <summary>The state.</summary>
    public ConnectionState State { get; private set; }

    /// <inheritdoc/>
    public VsockType Type { get; }

    /// <inheritdoc/>
    public uint LocalPort => Key.LocalPort;

    /// <inheritdoc/>
    public ulong PeerCid => Key.PeerCid;

    /// <inheritdoc/>
    public uint PeerPort => Key.PeerPort;

    /// <summary>Whether the connection is in the muxer's RX queue (muxer bookkeeping).</summary>
    public bool InRxQueue { get; set; }

    /// <summary>The timer deadline (<see cref="Stopwatch"/> ticks), 0 when none.</summary>
    public long Deadline { get; private set; }

    /// <summary>The free space the guest advertised and we have not used: never above its buf_alloc.</summary>
    private uint PeerFree
    {
        get
        {
            uint inFlight = _txCnt - _peerFwdCnt;
            return inFlight > _peerBufAlloc ? 0 : _peerBufAlloc - inFlight;
        }
    }

    /// <summary>The smallest RW worth sending while the guest's credit is the limit.</summary>
    private uint MinChunk => Math.Clamp(_peerBufAlloc / 4, 1, 4096);

    private bool WantsHostRead =>
        _endpoint is not null && State == ConnectionState.Established && !_pendingResponse && _hostReadable && !_hostEof
        && (_peerShutdown & ShutdownFlags.Receive) == 0 && (_sentShutdown & ShutdownFlags.Send) == 0;

    // ---------------------------------------------------------------- creation

    /// <summary>Starts a guest-initiated connection: asks the backend, arms the connect timer.</summary>
    /// <param name="header">The guest's REQUEST.</param>
    /// <param name="now">The current timestamp.</param>
    public void StartAccepting(in VsockHeader header, long now)
    {
        UpdatePeerCredit(header.BufAlloc, header.FwdCnt);
        ArmTimer(now, _muxer.Options.ConnectTimeout);
        _muxer.Backend.OnGuestConnect(this);
    }

    /// <summary>Starts a host-initiated connection: REQUEST is owed to the guest.</summary>
    /// <param name="endpoint">The host endpoint.</param>
    /// <param name="completion">Completed with the local port on RESPONSE, failed otherwise.</param>
    /// <param name="cancellationToken">Cancels the attempt.</param>
    /// <param name="now">The current timestamp.</param>
    public void StartConnecting(IVsockEndpoint endpoint, TaskCompletionSource<uint> completion, CancellationToken cancellationToken, long now)
    {
        _endpoint = endpoint;
        _connectCompletion = completion;
        _pendingRequest = true;
        ArmTimer(now, _muxer.Options.ConnectTimeout);
        if (cancellationToken.CanBeCanceled)
        {
            _cancellation = cancellationToken.Register(static state => ((VsockConnection)state!).Signal(SignalCancelled), this);
        }

        _muxer.ScheduleRx(this);
    }

    // ---------------------------------------------------------------- cross-thread entry points

    /// <inheritdoc/>
    public void Accept(IVsockEndpoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (Interlocked.CompareExchange(ref _answer, AnswerAccepted, AnswerNone) != AnswerNone)
        {
            endpoint.Close(abort: true);
            return;
        }

        Volatile.Write(ref _answeredEndpoint, endpoint);
        Signal(SignalAnswered);
    }

    /// <inheritdoc/>
    public void Refuse()
    {
        if (Interlocked.CompareExchange(ref _answer, AnswerRefused, AnswerNone) == AnswerNone)
        {
            Signal(SignalAnswered);
        }
    }

    /// <inheritdoc/>
    public void Readable() => Signal(SignalReadable);

    /// <inheritdoc/>
    public void Writable() => Signal(SignalWritable);

    /// <summary>Records signal flags and queues the connection on the loop once.</summary>
    /// <param name="flags">Signal bits.</param>
    private void Signal(int flags)
    {
        Interlocked.Or(ref _signals, flags);
        if (Interlocked.Exchange(ref _queued, 1) == 0)
        {
            _muxer.Loop.Signal(this);
        }
    }

    /// <inheritdoc/>
    public void OnSignalled()
    {
        Volatile.Write(ref _queued, 0);
        int flags = Interlocked.Exchange(ref _signals, 0);
        if (State == ConnectionState.Closed)
        {
            if ((flags & SignalAnswered) != 0)
            {
                Interlocked.Exchange(ref _answeredEndpoint, null)?.Close(abort: true);
            }

            return;
        }

        if ((flags & SignalAnswered) != 0)
        {
            OnAnswered();
        }

        if ((flags & SignalCancelled) != 0 && State == ConnectionState.Connecting)
        {
            _connectCompletion?.TrySetCanceled();
            Reset(refused: false, "the host connect was cancelled");
        }

        if ((flags & SignalWritable) != 0)
        {
            _writeRequested = false;
            FlushTx();
        }

        if ((flags & SignalReadable) != 0)
        {
            _readRequested = false;
            _hostReadable = true;
        }

        _muxer.ScheduleRx(this);
    }

    private void OnAnswered()
    {
        if (State != ConnectionState.Accepting)
        {
            return;
        }

        int answer = Volatile.Read(ref _answer);
        if (answer == AnswerAccepted)
        {
            IVsockEndpoint? endpoint = Interlocked.Exchange(ref _answeredEndpoint, null);
            if (endpoint is null)
            {
                return;
            }

            _endpoint = endpoint;
            _pendingResponse = true;
            State = ConnectionState.Established;
            Deadline = 0;
            _hostReadable = true;
            Interlocked.Increment(ref _muxer.Metrics.ConnectionsOpenedField);
            endpoint.Start(this);
        }
        else if (answer == AnswerRefused)
        {
            Reset(refused: true, "refused: no host listener");
        }
    }

    // ---------------------------------------------------------------- guest packets

    /// <summary>Handles a packet the guest sent on this connection (type and key already matched).</summary>
    /// <param name="packet">The parsed TX packet.</param>
    /// <param name="now">The current timestamp.</param>
    public void HandleGuestPacket(VsockPacket packet, long now)
    {
        if (State is ConnectionState.Closed)
        {
            return;
        }

        VsockOp op = packet.Op;
        if (op == VsockOp.Rst)
        {
            Interlocked.Increment(ref _muxer.Metrics.RstReceivedField);
            OnGuestRst();
            return;
        }

        if (State == ConnectionState.Resetting)
        {
            return;
        }

        UpdatePeerCredit(packet.BufAlloc, packet.FwdCnt);
        switch (op)
        {
            case VsockOp.Response:
                if (State != ConnectionState.Connecting)
                {
                    Reset(refused: false, "RESPONSE while not connecting");
                    return;
                }

                OnConnected();
                break;
            case VsockOp.Rw:
                HandleRw(packet);
                break;
            case VsockOp.Shutdown:
                HandleShutdown((ShutdownFlags)(packet.Flags & (uint)ShutdownFlags.Both), now);
                break;
            case VsockOp.CreditUpdate:
                _creditAnswered = _creditRequested;
                break;
            case VsockOp.CreditRequest:
                _pendingCreditUpdate = true;
                break;
            default:
                // REQUEST on an existing connection, INVALID, unknown ops: protocol errors.
                Reset(refused: false, "protocol error: unexpected op");
                return;
        }

        _muxer.ScheduleRx(this);
    }

    private void UpdatePeerCredit(uint bufAlloc, uint fwdCnt)
    {
        _peerBufAlloc = bufAlloc;
        _peerFwdCnt = fwdCnt;
    }

    private void OnConnected()
    {
        State = ConnectionState.Established;
        Deadline = 0;
        _hostReadable = true;
        _cancellation.Dispose();
        Interlocked.Increment(ref _muxer.Metrics.ConnectionsOpenedField);
        _endpoint!.Start(this);
        _connectCompletion?.TrySetResult(Key.LocalPort);
        _connectCompletion = null;
    }

    private void HandleRw(VsockPacket packet)
    {
        if (State != ConnectionState.Established || _pendingResponse || (_peerShutdown & ShutdownFlags.Send) != 0 || _endpoint is null)
        {
            // Data before the connection is up or after the guest said it sends no more.
            Reset(refused: false, "data before the connection is up or after SHUTDOWN(send)");
            return;
        }

        uint len = packet.Len;
        uint free = _bufAlloc - (_rxCnt - _fwdCnt);
        if (len > free)
        {
            Interlocked.Increment(ref _muxer.Metrics.CreditViolationsField);
            Reset(refused: false, "the guest sent beyond its credit");
            return;
        }

        SeqPacketFlags boundary = Type == VsockType.SeqPacket
            ? (SeqPacketFlags)(packet.Flags & (uint)(SeqPacketFlags.EndOfMessage | SeqPacketFlags.EndOfRecord))
            : SeqPacketFlags.None;
        if ((boundary & SeqPacketFlags.EndOfRecord) != 0)
        {
            boundary |= SeqPacketFlags.EndOfMessage;
        }

        _rxCnt += len;
        Interlocked.Add(ref _muxer.Metrics.TxBytesField, len);
        int offset = 0;
        bool complete = false;
        if (_txBuffer.IsEmpty)
        {
            EndpointResult result = _endpoint.Write(packet, 0, boundary);
            switch (result.Status)
            {
                case EndpointStatus.Ok:
                    offset = Math.Min(result.Bytes, (int)len);
                    _fwdCnt += (uint)offset;
                    complete = offset == (int)len;
                    break;
                case EndpointStatus.WouldBlock:
                    break;
                default:
                    Interlocked.Increment(ref _muxer.Metrics.HostWriteErrorsField);
                    Reset(refused: false, "host write failed");
                    return;
            }
        }

        if (!complete)
        {
            if (!_txBuffer.Append(packet, offset, (int)len - offset)
                || (boundary != SeqPacketFlags.None && !_txBuffer.AddBoundary(boundary)))
            {
                Interlocked.Increment(ref _muxer.Metrics.CreditViolationsField);
                Reset(refused: false, "the guest sent beyond its credit (TX buffer full)");
                return;
            }

            RequestWritable();
        }

        CheckCreditUpdate();
    }

    private void HandleShutdown(ShutdownFlags flags, long now)
    {
        _peerShutdown |= flags;
        if (State is ConnectionState.Accepting or ConnectionState.Connecting)
        {
            Reset(refused: false, "SHUTDOWN before the connection is up");
            return;
        }
        if ((flags & ShutdownFlags.Receive) != 0) _endpoint?.ShutdownReceive();

        if ((_peerShutdown & ShutdownFlags.Send) != 0 && _txBuffer.IsEmpty)
        {
            ShutdownEndpointSend();
        }

        if (_peerShutdown == ShutdownFlags.Both)
        {
            // The guest closed: deliver what we hold to the host, then answer RST.
            _pendingCreditUpdate = false;
            _pendingCreditRequest = false;
            _pendingShutdown = ShutdownFlags.None;
            if (_txBuffer.IsEmpty)
            {
                FinishOrderly();
            }
            else if (State != ConnectionState.Closing)
            {
                State = ConnectionState.Closing;
                ArmTimer(now, _muxer.Options.ShutdownTimeout);
            }

            return;
        }

        CheckBothHalvesClosed();
    }

    private void OnGuestRst()
    {
        bool orderly = State == ConnectionState.Closing || (_txBuffer.IsEmpty && (_peerShutdown & ShutdownFlags.Send) != 0);
        if (State == ConnectionState.Connecting)
        {
            Interlocked.Increment(ref _muxer.Metrics.ConnectionsRefusedField);
            _connectCompletion?.TrySetException(new VsockConnectException(VsockConnectFailure.Refused, $"The guest refused the connection to port {Key.PeerPort}."));
        }
        else if (State == ConnectionState.Accepting)
        {
            Interlocked.CompareExchange(ref _answer, AnswerExpired, AnswerNone);
        }

        if (_endpoint is not null && orderly && !_txBuffer.IsEmpty)
        {
            orderly = false;
        }

        Remove(orderly);
    }

    // ---------------------------------------------------------------- host side

    private void FlushTx()
    {
        if (_endpoint is null || State is ConnectionState.Resetting or ConnectionState.Closed)
        {
            return;
        }

        if (!_txBuffer.IsEmpty)
        {
            EndpointStatus status = _txBuffer.Flush(_endpoint, out int written);
            _fwdCnt += (uint)written;
            if (status == EndpointStatus.WouldBlock)
            {
                RequestWritable();
            }
            else if (status != EndpointStatus.Ok)
            {
                Interlocked.Increment(ref _muxer.Metrics.HostWriteErrorsField);
                Reset(refused: false, "host write failed");
                return;
            }
        }

        if (_txBuffer.IsEmpty)
        {
            if ((_peerShutdown & ShutdownFlags.Send) != 0)
            {
                ShutdownEndpointSend();
            }

            if (State == ConnectionState.Closing && _peerShutdown == ShutdownFlags.Both)
            {
                FinishOrderly();
                return;
            }

            CheckBothHalvesClosed();
        }

        CheckCreditUpdate();
    }

    private void ShutdownEndpointSend()
    {
        if (!_endpointSendShut && _endpoint is not null)
        {
            _endpointSendShut = true;
            _endpoint.ShutdownSend();
        }
    }

    private void RequestWritable()
    {
        if (!_writeRequested && _endpoint is not null)
        {
            _writeRequested = true;
            _endpoint.RequestWritable();
        }
    }

    private void RequestReadable()
    {
        if (!_readRequested && _endpoint is not null)
        {
            _readRequested = true;
            _endpoint.RequestReadable();
        }
    }

    private void CheckCreditUpdate()
    {
        // What the guest believes we can still take, from the last fwd_cnt we told it.
        uint peerView = _bufAlloc - (_rxCnt - _lastSentFwdCnt);
        if (_fwdCnt != _lastSentFwdCnt && peerView < _bufAlloc / 2 && State == ConnectionState.Established
            && (_peerShutdown & ShutdownFlags.Send) == 0)
        {
            _pendingCreditUpdate = true;
        }
    }

    private void CheckBothHalvesClosed()
    {
        // Neither side sends any more: full close (SHUTDOWN with both flags; the guest answers RST, or the timeout does).
        if ((_peerShutdown & ShutdownFlags.Send) != 0 && (_sentShutdown & ShutdownFlags.Send) != 0 && _txBuffer.IsEmpty
            && State == ConnectionState.Established && (_sentShutdown | _pendingShutdown) != ShutdownFlags.Both)
        {
            _pendingShutdown |= ShutdownFlags.Both & ~_sentShutdown;
            _muxer.ScheduleRx(this);
        }
    }

    private void FinishOrderly()
    {
        _endpoint?.Close(abort: false);
        _endpoint = null;
        _rstIsOrderly = true;
        _pendingRst = true;
        State = ConnectionState.Resetting;
        Deadline = 0;
        _muxer.ScheduleRx(this);
    }

    /// <summary>Resets the connection: the host endpoint is aborted and the guest gets RST.</summary>
    /// <param name="refused">Whether this refuses a connection attempt (for metrics).</param>
    /// <param name="reason">Why, for the debug log (a constant string).</param>
    public void Reset(bool refused, string reason = "reset")
    {
        if (State is ConnectionState.Resetting or ConnectionState.Closed)
        {
            return;
        }
        ConnectionLog.Reset(_muxer.Options.Logger, Key, State, reason);

        if (refused)
        {
            Interlocked.Increment(ref _muxer.Metrics.ConnectionsRefusedField);
        }

        if (State == ConnectionState.Accepting)
        {
            Interlocked.CompareExchange(ref _answer, AnswerExpired, AnswerNone);
        }

        _connectCompletion?.TrySetException(new VsockConnectException(VsockConnectFailure.Reset, "The connection was reset while connecting."));
        _connectCompletion = null;
        _endpoint?.Close(abort: true);
        _endpoint = null;
        _txBuffer.Clear();
        _rstIsOrderly = false;
        _pendingRst = true;
        State = ConnectionState.Resetting;
        Deadline = 0;
        _muxer.ScheduleRx(this);
    }

    /// <summary>Removes the connection without telling the guest (guest RST, transport reset, device reset).</summary>
    /// <param name="orderly">Whether this counts as an orderly close.</param>
    public void Remove(bool orderly)
    {
        if (State == ConnectionState.Closed)
        {
            return;
        }

        _connectCompletion?.TrySetException(new VsockConnectException(VsockConnectFailure.Reset, "The connection was reset while connecting."));
        _connectCompletion = null;
        _cancellation.Dispose();
        if (State == ConnectionState.Accepting)
        {
            Interlocked.CompareExchange(ref _answer, AnswerExpired, AnswerNone);
        }

        _endpoint?.Close(abort: !orderly);
        _endpoint = null;
        _txBuffer.Clear();
        ConnectionLog.Closed(_muxer.Options.Logger, Key, State, orderly);
        State = ConnectionState.Closed;
        Deadline = 0;
        Interlocked.Increment(ref orderly ? ref _muxer.Metrics.ConnectionsClosedField : ref _muxer.Metrics.ConnectionsResetField);
        _muxer.Forget(this);
    }

    /// <summary>Fails a pending host connect with <paramref name="failure"/> (used by the muxer when it cannot start).</summary>
    /// <param name="failure">Why.</param>
    /// <param name="message">The message.</param>
    public void FailConnect(VsockConnectFailure failure, string message)
    {
        _connectCompletion?.TrySetException(new VsockConnectException(failure, message));
        _connectCompletion = null;
    }

    // ---------------------------------------------------------------- timers

    private void ArmTimer(long now, TimeSpan timeout)
    {
        Deadline = now + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        _muxer.AddTimer(this, Deadline);
    }

    /// <summary>A timer fired (the muxer checked it is this connection's current deadline).</summary>
    public void OnTimer()
    {
        Deadline = 0;
        switch (State)
        {
            case ConnectionState.Accepting:
                Interlocked.Increment(ref _muxer.Metrics.ConnectTimeoutsField);
                Reset(refused: true, "the host did not answer the REQUEST in time");
                break;
            case ConnectionState.Connecting:
                Interlocked.Increment(ref _muxer.Metrics.ConnectTimeoutsField);
                _connectCompletion?.TrySetException(new VsockConnectException(VsockConnectFailure.TimedOut, $"The guest did not answer the connection to port {Key.PeerPort} in time."));
                _connectCompletion = null;
                Reset(refused: false, "the guest did not answer the connect in time");
                break;
            case ConnectionState.Closing:
                Interlocked.Increment(ref _muxer.Metrics.ShutdownTimeoutsField);
                Reset(refused: false, "the guest did not finish the close in time");
                break;
        }
    }

    // ---------------------------------------------------------------- RX production

    /// <summary>Whether the connection has a packet to send now (may record a credit stall as a side effect).</summary>
    /// <returns><see langword="true"/> when <see cref="TryProduceRx"/> is worth calling.</returns>
    public bool HasRxWork()
    {
        if (State == ConnectionState.Closed)
        {
            return false;
        }

        if (_pendingRst)
        {
            return true;
        }

        if (State == ConnectionState.Resetting)
        {
            return false;
        }

        if (_pendingRequest || _pendingResponse || _pendingCreditUpdate || _pendingCreditRequest || _pendingShutdown != ShutdownFlags.None)
        {
            return true;
        }

        if (WantsHostRead)
        {
            if (PeerFree >= (_creditAnswered ? 1u : MinChunk))
            {
                return true;
            }

            if (!_creditRequested)
            {
                _creditRequested = true;
                _pendingCreditRequest = true;
                Interlocked.Increment(ref _muxer.Metrics.CreditStallsField);
                ConnectionLog.CreditStall(_muxer.Options.Logger, Key, PeerFree);
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Asks the guest for a CREDIT_UPDATE on an established connection: after the driver stopped and
    /// restarted the queues, a guest that only paused answers it and keeps the connection, while a
    /// guest that rebooted does not know the connection and answers RST, which closes it here too.
    /// </summary>
    public void ProbeGuest()
    {
        if (State == ConnectionState.Established)
        {
            _pendingCreditRequest = true;
            _muxer.ScheduleRx(this);
        }
    }

    /// <summary>Writes the next packet this connection owes the guest into <paramref name="rx"/>.</summary>
    /// <param name="rx">A parsed RX packet (buffer of the guest).</param>
    /// <returns>The used length (44 + payload), or 0 when nothing was written.</returns>
    public uint TryProduceRx(VsockPacket rx)
    {
        if (_pendingRst)
        {
            _pendingRst = false;
            WriteHeader(rx, VsockOp.Rst, 0, 0);
            Interlocked.Increment(ref _muxer.Metrics.RstSentField);
            Remove(_rstIsOrderly);
            return VsockHeader.Size;
        }

        if (State == ConnectionState.Resetting || State == ConnectionState.Closed)
        {
            return 0;
        }

        if (_pendingRequest)
        {
            _pendingRequest = false;
            return WriteHeader(rx, VsockOp.Request, 0, 0);
        }

        if (_pendingResponse)
        {
            _pendingResponse = false;
            return WriteHeader(rx, VsockOp.Response, 0, 0);
        }

        if (WantsHostRead && PeerFree >= (_creditAnswered ? 1u : MinChunk))
        {
            uint used = TryProduceData(rx);
            if (used != 0)
            {
                return used;
            }

            if (_pendingRst)
            {
                return TryProduceRx(rx);
            }
        }

        if (_pendingCreditUpdate)
        {
            _pendingCreditUpdate = false;
            Interlocked.Increment(ref _muxer.Metrics.CreditUpdatesSentField);
            return WriteHeader(rx, VsockOp.CreditUpdate, 0, 0);
        }

        if (_pendingCreditRequest)
        {
            _pendingCreditRequest = false;
            Interlocked.Increment(ref _muxer.Metrics.CreditRequestsSentField);
            return WriteHeader(rx, VsockOp.CreditRequest, 0, 0);
        }

        if (_pendingShutdown != ShutdownFlags.None)
        {
            ShutdownFlags flags = _pendingShutdown | _sentShutdown;
            _pendingShutdown = ShutdownFlags.None;
            _sentShutdown = flags;
            uint used = WriteHeader(rx, VsockOp.Shutdown, 0, (uint)flags);
            if (flags == ShutdownFlags.Both)
            {
                if (State != ConnectionState.Closing)
                {
                    State = ConnectionState.Closing;
                    ArmTimer(Stopwatch.GetTimestamp(), _muxer.Options.ShutdownTimeout);
                }
            }
            else
            {
                CheckBothHalvesClosed();
            }

            return used;
        }

        return 0;
    }

    private uint TryProduceData(VsockPacket rx)
    {
        int max = (int)Math.Min(Math.Min((uint)rx.DataCapacity, PeerFree), _muxer.Options.MaxPacketData);
        if (max <= 0)
        {
            return 0;
        }

        EndpointResult result = _endpoint!.Read(rx, max);
        switch (result.Status)
        {
            case EndpointStatus.Ok:
                if (result.Bytes == 0 && (Type != VsockType.SeqPacket || result.Flags == SeqPacketFlags.None))
                {
                    _hostReadable = false;
                    RequestReadable();
                    return 0;
                }

                int bytes = Math.Min(result.Bytes, max);
                _txCnt += (uint)bytes;
                _creditRequested = _creditAnswered = false;
                _pendingCreditUpdate = false;
                Interlocked.Add(ref _muxer.Metrics.RxBytesField, bytes);
                return WriteHeader(rx, VsockOp.Rw, (uint)bytes, Type == VsockType.SeqPacket ? (uint)result.Flags : 0);
            case EndpointStatus.WouldBlock:
                _hostReadable = false;
                RequestReadable();
                return 0;
            case EndpointStatus.EndOfStream:
                _hostEof = true;
                _pendingShutdown |= ShutdownFlags.Send;
                return 0;
            case EndpointStatus.Closed:
                _hostEof = true;
                _txBuffer.Clear();
                _pendingShutdown |= ShutdownFlags.Both;
                return 0;
            default:
                Interlocked.Increment(ref _muxer.Metrics.HostReadErrorsField);
                Reset(refused: false, "host read failed");
                return 0;
        }
    }

    private uint WriteHeader(VsockPacket rx, VsockOp op, uint len, uint flags)
    {
        var header = new VsockHeader
        {
            SrcCid = Key.LocalCid,
            DstCid = Key.PeerCid,
            SrcPort = Key.LocalPort,
            DstPort = Key.PeerPort,
            Len = len,
            Type = Type,
            Op = op,
            Flags = flags,
            BufAlloc = _bufAlloc,
            FwdCnt = _fwdCnt,
        };
        rx.SetHeader(in header);
        _lastSentFwdCnt = _fwdCnt;
        return VsockHeader.Size + len;
    }
}
