using System.Diagnostics;

namespace Virtio.Vsock.Device;

/// <summary>
/// What a <see cref="VsockConnection"/> owes its guest and how it writes it into RX buffers (RST, REQUEST, RESPONSE, data within the guest's credit, CREDIT_UPDATE, CREDIT_REQUEST, SHUTDOWN), and its timers (connect, shutdown, credit request).
/// </summary>
/// <remarks>
/// <para>Runs on the device loop only. <b>Must never:</b> send RW beyond the guest's credit or tiny RW packets while that credit is low, or ask for credit before the guest had the time to update it by itself.</para>
/// </remarks>
internal sealed partial class VsockConnection
{
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
                FailConnect(new VsockConnectException(VsockConnectFailure.TimedOut, $"The guest did not answer the connection to port {Key.PeerPort} in time."));
                Reset(refused: false, "the guest did not answer the connect in time");
                break;
            case ConnectionState.Closing:
                // One more try first: if the loop itself ran late (a starved process), the host may have
                // drained meanwhile; progress re-arms the timer (see FlushTx) instead of losing the bytes.
                uint forwarded = _fwdCnt;
                FlushTx();
                if (State == ConnectionState.Closing && _fwdCnt == forwarded)
                {
                    Interlocked.Increment(ref _muxer.Metrics.ShutdownTimeoutsField);
                    Reset(refused: false, "no progress before the shutdown timeout (guest's RST or host's reads)");
                }

                break;
            case ConnectionState.Established when _creditStalled && WantsHostRead && PeerFree < MinChunk:
                // No update ended the stall: ask, then wait twice as long before asking again (up to 64x).
                _pendingCreditRequest = true;
                _creditRequestsThisStall++;
                ArmTimer(Stopwatch.GetTimestamp(), _muxer.Options.CreditRequestDelay * (1 << Math.Min(_creditRequestsThisStall, 6)));
                _muxer.ScheduleRx(this);
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
            if (PeerFree >= SmallestRw)
            {
                return true;
            }

            if (!_creditStalled)
            {
                // Out of the guest's credit. A Linux guest sends CREDIT_UPDATE by itself once its reader frees
                // space, so ask only if no update ended the stall in time (see OnTimer).
                _creditStalled = true;
                _creditStalledSince = Environment.TickCount64;
                _creditRequestsThisStall = 0;
                Interlocked.Increment(ref _muxer.Metrics.CreditStallsField);
                ConnectionLog.CreditStall(_muxer.Options.Logger, Key, PeerFree);
                ArmTimer(Stopwatch.GetTimestamp(), _muxer.Options.CreditRequestDelay);
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
    /// <param name="batch">More RX buffers a stream's data may fill in the same read (their lengths are recorded
    /// there), or <see langword="null"/>.</param>
    /// <returns>The used length of <paramref name="rx"/> (44 + payload), or 0 when nothing was written.</returns>
    public uint TryProduceRx(VsockPacket rx, RxBatch? batch = null)
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

        if (WantsHostRead && PeerFree >= SmallestRw)
        {
            // A burst only once the host showed it has more than a buffer's worth (a single byte of a request /
            // response exchange must not make the device take and give back a dozen RX buffers).
            uint used = batch is not null && _hostBursting && Type == VsockType.Stream && _endpoint!.ReadsIntoManyPackets
                ? TryProduceBurst(rx, batch)
                : TryProduceData(rx);
            if (used != 0)
            {
                return used;
            }

            if (_pendingRst)
            {
                return TryProduceRx(rx, batch);
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
        if (result.Status != EndpointStatus.Ok
            || (result.Bytes == 0 && (Type != VsockType.SeqPacket || result.Flags == SeqPacketFlags.None)))
        {
            return OnReadWithoutData(result);
        }

        int bytes = Math.Min(result.Bytes, max);
        _hostBursting = bytes == max && max == rx.DataCapacity;
        return WriteData(rx, (uint)bytes, Type == VsockType.SeqPacket ? (uint)result.Flags : 0);
    }

    /// <summary>
    /// Stream data into <paramref name="rx"/> and as many more RX buffers as the guest's credit and the host's data
    /// fill, with one endpoint read: the buffers are taken from <paramref name="batch"/> before the read, and the ones
    /// the data did not reach are left unfilled there (the device gives them back to the ring).
    /// </summary>
    private uint TryProduceBurst(VsockPacket rx, RxBatch batch)
    {
        uint maxPerPacket = _muxer.Options.MaxPacketData;
        uint credit = PeerFree;
        long reach = Math.Min(Math.Min((uint)rx.DataCapacity, credit), maxPerPacket);
        if (reach == 0)
        {
            return 0;
        }

        // Take more buffers while the guest's credit reaches beyond those already taken.
        while (reach < credit && batch.TryTake())
        {
            VsockPacket extra = batch.Extra(batch.Taken - 1);
            reach += Math.Min(Math.Min((uint)extra.DataCapacity, credit - reach), maxPerPacket);
        }

        if (batch.Taken == 0)
        {
            return TryProduceData(rx);
        }

        EndpointResult result = _endpoint!.Read(batch.Packets, (int)Math.Min(reach, int.MaxValue));
        if (result.Status != EndpointStatus.Ok || result.Bytes == 0)
        {
            return OnReadWithoutData(result);
        }

        // The bytes fill the buffers in order, each up to its capacity and the packet limit.
        long remaining = Math.Min(result.Bytes, reach);
        _hostBursting = remaining == reach;
        uint firstBytes = (uint)Math.Min(remaining, Math.Min((uint)rx.DataCapacity, maxPerPacket));
        remaining -= firstBytes;
        uint used = WriteData(rx, firstBytes);
        if (remaining > 0)
        {
            Interlocked.Increment(ref _muxer.Metrics.RxBurstsField);
        }

        for (int i = 0; i < batch.Taken && remaining > 0; i++)
        {
            VsockPacket extra = batch.Extra(i);
            uint bytes = (uint)Math.Min(remaining, Math.Min((uint)extra.DataCapacity, maxPerPacket));
            remaining -= bytes;
            batch.ExtraLengths[i] = WriteData(extra, bytes);
            batch.Filled = i + 1;
        }

        return used;
    }

    /// <summary>Accounts <paramref name="bytes"/> read into <paramref name="rx"/> and writes its RW header.</summary>
    private uint WriteData(VsockPacket rx, uint bytes, uint flags = 0)
    {
        _txCnt += bytes;
        _creditStalled = _creditAnswered = false;
        _pendingCreditUpdate = false;
        Interlocked.Add(ref _muxer.Metrics.RxBytesField, bytes);
        return WriteHeader(rx, VsockOp.Rw, bytes, flags);
    }

    /// <summary>A read that brought no data: wait for the host, or carry its end of stream, close or error.</summary>
    private uint OnReadWithoutData(EndpointResult result)
    {
        _hostBursting = false;
        switch (result.Status)
        {
            case EndpointStatus.Ok:
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
