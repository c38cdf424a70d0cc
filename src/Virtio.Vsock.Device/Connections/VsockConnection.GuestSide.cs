using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;

namespace Virtio.Vsock.Device;

/// <summary>
/// What a <see cref="VsockConnection"/> does with the packets its guest sends (RW into the host endpoint or the tx buffer, SHUTDOWN, RST, credit) and how it moves buffered bytes on to the host endpoint.
/// </summary>
/// <remarks>
/// <para>Runs on the device loop only. <b>Must never:</b> hold more guest bytes than the <c>buf_alloc</c> it advertised (a guest sending beyond its credit is reset), answer an RST with an RST, or let a host endpoint's failure reach the loop (statuses, and exceptions caught by the muxer, reset this connection only).</para>
/// </remarks>
internal sealed partial class VsockConnection
{
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
                // An answer to our CREDIT_REQUEST: whatever credit it gives is all the guest will give before its
                // reader moves (e.g. SO_RCVLOWAT at its buffer size), so send even less than the usual minimum.
                _creditAnswered = _creditStalled && _creditRequestsThisStall > 0;
                break;
            case VsockOp.CreditRequest:
                // Before the connection is up the RESPONSE (or REQUEST) we owe carries our credit: a
                // CREDIT_UPDATE must not overtake it.
                if (State is not (ConnectionState.Accepting or ConnectionState.Connecting))
                {
                    _pendingCreditUpdate = true;
                }

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
        if (_creditStalled && PeerFree >= MinChunk)
        {
            _creditStalled = false;
        }
    }

    private void OnConnected()
    {
        State = ConnectionState.Established;
        Deadline = 0;
        _hostReadable = true;
        _cancellation.Dispose();
        Interlocked.Increment(ref _muxer.Metrics.ConnectionsOpenedField);
        _endpoint!.Start(this);
        CompleteConnect();
    }

    private void HandleRw(VsockPacket packet)
    {
        if (TryJoinTxRun(packet))
        {
            return;
        }

        if (_muxer.TxRun.Owner == this)
        {
            // This packet does not join the run (a credit violation, a full run, buffered bytes): the run goes
            // first, in order. Writing it may have reset the connection.
            _muxer.FlushTxRun();
            if (State != ConnectionState.Established)
            {
                return;
            }
        }

        if (!TakesGuestData)
        {
            // Data before the connection is up or after the guest said it sends no more.
            Reset(refused: false, "data before the connection is up or after SHUTDOWN(send)");
            return;
        }

        uint len = packet.Len;
        if (len > CreditLeft)
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

        CountReceived(len);
        int offset = 0;
        bool complete = false;
        if (_txBuffer.IsEmpty)
        {
            if (!Forwarded(_endpoint.Write(packet, 0, boundary), (int)len, out offset))
            {
                return;
            }

            complete = offset == (int)len;
        }

        if (!complete)
        {
            if (!BufferTx(packet, offset, (int)len - offset, boundary))
            {
                return;
            }

            RequestWritable();
        }

        CheckCreditUpdate();
    }

    /// <summary>
    /// Holds a stream data packet back in the muxer's <see cref="TxRun"/> when it can go to the host with the packets
    /// around it in one write: the connection is up, the packet is within credit, nothing is buffered before it and
    /// the endpoint writes from many packets at once. Its bytes count as received now (credit); they count as
    /// forwarded when <see cref="WriteTxRun"/> writes them.
    /// </summary>
    private bool TryJoinTxRun(VsockPacket packet)
    {
        if (Type != VsockType.Stream || !TakesGuestData || !_txBuffer.IsEmpty || packet.Len > CreditLeft
            || !_endpoint.WritesFromManyPackets || !_muxer.TxRun.CanJoin(this))
        {
            return false;
        }

        CountReceived(packet.Len);
        _muxer.KeepTxPacket(this);
        return true;
    }

    /// <summary>Whether the guest may send data now: the connection is up and answered, and the guest still sends.</summary>
    [MemberNotNullWhen(true, nameof(_endpoint))]
    private bool TakesGuestData =>
        State == ConnectionState.Established && !_pendingResponse && (_peerShutdown & ShutdownFlags.Send) == 0 && _endpoint is not null;

    /// <summary>What the guest may still send within the credit we gave it (wrapping u32 arithmetic).</summary>
    private uint CreditLeft => _bufAlloc - (_rxCnt - _fwdCnt);

    /// <summary>Counts guest data as received (our credit to the guest shrinks by it until it is forwarded).</summary>
    private void CountReceived(uint len)
    {
        _rxCnt += len;
        Interlocked.Add(ref _muxer.Metrics.TxBytesField, len);
    }

    /// <summary>
    /// Writes the packets this connection holds in the muxer's <see cref="TxRun"/> to the host endpoint with one
    /// gathering write; what the host does not take now is buffered (as for a single packet).
    /// </summary>
    /// <param name="packets">The run, in guest order.</param>
    /// <param name="bytes">Their payload bytes.</param>
    internal void WriteTxRun(ReadOnlySpan<VsockPacket> packets, int bytes)
    {
        if (_endpoint is null || State != ConnectionState.Established)
        {
            return;
        }

        if (!Forwarded(_endpoint.Write(packets), bytes, out int written))
        {
            return;
        }

        if (written < bytes)
        {
            int skip = written;
            foreach (VsockPacket packet in packets)
            {
                int len = (int)packet.Len;
                if (skip >= len)
                {
                    skip -= len;
                    continue;
                }

                if (!BufferTx(packet, skip, len - skip, SeqPacketFlags.None))
                {
                    return;
                }

                skip = 0;
            }

            RequestWritable();
        }

        CheckCreditUpdate();
        _muxer.ScheduleRx(this);
    }

    /// <summary>
    /// Counts what a host write of at most <paramref name="max"/> bytes took as forwarded (none when it would block).
    /// A failed write resets the connection.
    /// </summary>
    /// <param name="result">The endpoint's answer.</param>
    /// <param name="max">The bytes offered.</param>
    /// <param name="written">The bytes taken.</param>
    /// <returns><see langword="false"/> when the write failed and the connection was reset.</returns>
    private bool Forwarded(EndpointResult result, int max, out int written)
    {
        written = 0;
        switch (result.Status)
        {
            case EndpointStatus.Ok:
                written = Math.Clamp(result.Bytes, 0, max);
                _fwdCnt += (uint)written;
                return true;
            case EndpointStatus.WouldBlock:
                return true;
            default:
                Interlocked.Increment(ref _muxer.Metrics.HostWriteErrorsField);
                Reset(refused: false, "host write failed");
                return false;
        }
    }

    /// <summary>Buffers what the host did not take of a packet; resets the connection when the buffer or the device's budget is full.</summary>
    /// <returns>Whether the bytes were buffered (else the connection is resetting).</returns>
    private bool BufferTx(VsockPacket packet, int offset, int count, SeqPacketFlags boundary)
    {
        TxAppendResult appended = _txBuffer.Append(packet, offset, count);
        if (appended == TxAppendResult.Appended && boundary != SeqPacketFlags.None && !_txBuffer.AddBoundary(boundary))
        {
            appended = TxAppendResult.OverCapacity;
        }

        if (appended == TxAppendResult.Appended)
        {
            return true;
        }

        Interlocked.Increment(ref appended == TxAppendResult.OverBudget
            ? ref _muxer.Metrics.BufferLimitResetsField
            : ref _muxer.Metrics.CreditViolationsField);
        Reset(refused: false, appended == TxAppendResult.OverBudget ? "the device's buffered-bytes limit is reached" : "the guest sent beyond its credit (TX buffer full)");
        return false;
    }

    private void HandleShutdown(ShutdownFlags flags, long now)
    {
        _peerShutdown |= flags;
        if (State is ConnectionState.Accepting or ConnectionState.Connecting)
        {
            Reset(refused: false, "SHUTDOWN before the connection is up");
            return;
        }

        if ((flags & ShutdownFlags.Receive) != 0)
        {
            // The guest reads no more: the host program's sends must fail (EPIPE), not fill a socket nobody drains.
            _endpoint?.ShutdownReceive();
        }

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
            FailConnect(new VsockConnectException(VsockConnectFailure.Refused, $"The guest refused the connection to port {Key.PeerPort}."));
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
            if (written > 0 && State == ConnectionState.Closing)
            {
                // The guest closed and the host is still taking what it sent: the shutdown timeout counts from
                // the host's last progress, so a slow reader gets every byte and only a stuck one is reset.
                ArmTimer(Stopwatch.GetTimestamp(), _muxer.Options.ShutdownTimeout);
            }

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
            _writeRequestedSince = Environment.TickCount64;
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
        CloseQuietly(_endpoint, abort: false);
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

        FailConnect(new VsockConnectException(VsockConnectFailure.Reset, "The connection was reset while connecting."));
        CloseQuietly(_endpoint, abort: true);
        _endpoint = null;
        CloseAnsweredEndpoint();
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

        FailConnect(new VsockConnectException(VsockConnectFailure.Reset, "The connection was reset while connecting."));
        _cancellation.Dispose();
        if (State == ConnectionState.Accepting)
        {
            Interlocked.CompareExchange(ref _answer, AnswerExpired, AnswerNone);
        }

        CloseQuietly(_endpoint, abort: !orderly);
        _endpoint = null;
        CloseAnsweredEndpoint();
        _txBuffer.Release();
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
        FailConnect(new VsockConnectException(failure, message));
    }

    /// <summary>Tells a pending host connect's completion it succeeded (once: the completion is dropped).</summary>
    private void CompleteConnect()
    {
        IVsockConnectCompletion? completion = _connectCompletion;
        _connectCompletion = null;
        completion?.OnConnected(Key.LocalPort);
    }

    /// <summary>Tells a pending host connect's completion it failed (once: the completion is dropped).</summary>
    private void FailConnect(Exception error)
    {
        IVsockConnectCompletion? completion = _connectCompletion;
        _connectCompletion = null;
        completion?.OnFailed(error);
    }
}
