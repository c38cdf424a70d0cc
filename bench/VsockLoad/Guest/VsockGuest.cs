using System.Diagnostics;
using Virtio.Memory;
using Virtio.Queue.Testing;
using Virtio.Vsock;
using VsockLoad.Frontend;
using VsockLoad.Report;

namespace VsockLoad.Guest;

/// <summary>
/// The guest's virtio-vsock driver, modelled on Linux's virtio_transport: posts 256 RX buffers of one
/// 44+4096-byte descriptor and refills them as <c>virtio_transport_rx_work</c> does (once fewer than half are
/// posted: every free buffer, one <c>avail.idx</c> store, one kick decision), sends TX packets as header +
/// payload chains (header only for control), runs per-connection credit like <c>virtio_transport_common.c</c>
/// (CREDIT_UPDATE once the free space the device knows of drops under 64 KiB, CREDIT_REQUEST only after a stall
/// of <see cref="StallBeforeRequest"/> that no update ended), answers CREDIT_REQUEST, answers a full SHUTDOWN
/// with RST, and checks every RX packet against the protocol rules (<see cref="Violation"/>) and every payload
/// byte against the pattern.
/// </summary>
/// <remarks>Single-threaded. Steady-state processing does not allocate.</remarks>
internal sealed class VsockGuest
{
    /// <summary>The host's CID.</summary>
    public const ulong HostCid = 2;

    /// <summary>The receive buffer the guest advertises per connection (Linux's default, 256 KiB).</summary>
    public const uint BufAlloc = 256 * 1024;

    private const uint CreditUpdateThreshold = 64 * 1024;
    private static readonly long StallBeforeRequest = Stopwatch.Frequency / 20;

    private readonly GuestQueues _queues;
    private readonly GuestMemory _memory;
    private readonly TestDriver _rx;
    private readonly TestDriver _tx;
    private readonly IGuestApp _app;
    private readonly Checks _checks;
    private readonly ushort[] _rxBufferOfHead = new ushort[GuestLayout.QueueSize];
    private readonly int[] _freeRxBuffers = new int[GuestLayout.QueueSize];
    private int _freeRxBufferCount;
    private readonly short[] _txSlotOfHead = new short[GuestLayout.QueueSize];
    private readonly int[] _freeSlots = new int[GuestLayout.QueueSize];
    private readonly Dictionary<ulong, GuestConnection> _connections = [];
    private readonly List<GuestConnection> _sendList = [];
    private int _freeSlotCount;
    private bool _txAdded;

    /// <summary>Creates the driver over a started device's queues and posts every RX buffer.</summary>
    /// <param name="queues">The queues (and kick eventfds, -1 for none).</param>
    /// <param name="app">The scenario.</param>
    /// <param name="checks">Where violations go.</param>
    public VsockGuest(GuestQueues queues, IGuestApp app, Checks checks)
    {
        _queues = queues;
        _memory = queues.Memory;
        _rx = queues.Rx;
        _tx = queues.Tx;
        _app = app;
        _checks = checks;
        Cid = queues.GuestCid;
        for (int i = 0; i < _freeSlots.Length; i++)
        {
            _freeSlots[i] = i;
        }

        _freeSlotCount = _freeSlots.Length;
        for (int i = 0; i < GuestLayout.QueueSize; i++)
        {
            PostRx(i);
        }

        _rx.Publish();
        Kick(_rx, _queues.RxKick, force: true);
    }

    /// <summary>The guest's CID.</summary>
    public ulong Cid { get; }

    /// <summary>Packet counts.</summary>
    public GuestCounters Counters { get; } = new();

    /// <summary>Whether the device broke the ring (a bad used head): the run cannot go on.</summary>
    public bool Broken { get; private set; }

    /// <summary>Opens a connection from the guest (REQUEST).</summary>
    /// <param name="connection">The connection.</param>
    public void Connect(GuestConnection connection)
    {
        connection.State = ConnectionState.Connecting;
        _connections[Key(connection.LocalPort, connection.PeerPort)] = connection;
        Owe(connection, PendingControl.Request);
    }

    /// <summary>Lets the connection send up to <see cref="GuestConnection.TxTarget"/>.</summary>
    /// <param name="connection">The connection.</param>
    public void Wake(GuestConnection connection) => Queue(connection);

    /// <summary>Closes both directions (SHUTDOWN, then RST from the device ends it).</summary>
    /// <param name="connection">The connection.</param>
    public void Shutdown(GuestConnection connection)
    {
        if (connection.State is ConnectionState.Established or ConnectionState.Connecting)
        {
            connection.State = ConnectionState.Closing;
            Owe(connection, PendingControl.Shutdown);
        }
    }

    /// <summary>Disables used-buffer notifications on both queues (while the driver is busy).</summary>
    public void DisableInterrupts()
    {
        _rx.DisableInterrupts();
        _tx.DisableInterrupts();
    }

    /// <summary>Enables used-buffer notifications on both queues.</summary>
    /// <returns>Whether used buffers are already pending (process them instead of sleeping).</returns>
    public bool EnableInterrupts()
    {
        bool rx = _rx.EnableInterrupts();
        bool tx = _tx.EnableInterrupts();
        return rx || tx;
    }

    /// <summary>Takes every used RX buffer and handles its packet; refills the ring once fewer than half of its
    /// buffers are posted (as Linux does).</summary>
    /// <returns>Packets handled.</returns>
    public int ProcessRx()
    {
        int handled = 0;
        while (true)
        {
            UsedElement element;
            try
            {
                if (!_rx.TryTakeUsed(out element))
                {
                    break;
                }
            }
            catch (InvalidOperationException e)
            {
                _checks.Add(Violation.BadUsedHead, "rx: " + e.Message);
                Broken = true;
                return handled;
            }

            int buffer = _rxBufferOfHead[element.Id];
            HandleRx(GuestLayout.RxBuffer(buffer), element.Length);
            _freeRxBuffers[_freeRxBufferCount++] = buffer;
            handled++;
        }

        // Linux's virtio_transport_rx_work refills only once fewer than half of its most-ever-posted buffers are
        // posted (rx_buf_nr < rx_buf_max_nr / 2), then posts until the ring is full and kicks once.
        if (_freeRxBufferCount > GuestLayout.QueueSize / 2)
        {
            while (_freeRxBufferCount > 0)
            {
                PostRx(_freeRxBuffers[--_freeRxBufferCount]);
            }

            _rx.Publish();
            Kick(_rx, _queues.RxKick, force: false);
        }

        return handled;
    }

    /// <summary>Reclaims used TX chains, then sends what connections owe, as TX space allows.</summary>
    /// <returns>Whether anything was sent or reclaimed.</returns>
    public bool PumpTx()
    {
        bool progress = ReclaimTx();
        long now = Stopwatch.GetTimestamp();
        for (int i = 0; i < _sendList.Count;)
        {
            GuestConnection connection = _sendList[i];
            bool more = SendOwed(connection, now);
            if (_freeSlotCount == 0 || _tx.FreeDescriptors < 2)
            {
                break;
            }

            if (!more)
            {
                connection.Queued = false;
                _sendList[i] = _sendList[^1];
                _sendList.RemoveAt(_sendList.Count - 1);
            }
            else
            {
                i++;
            }
        }

        if (_txAdded)
        {
            _txAdded = false;
            Kick(_tx, _queues.TxKick, force: false);
            progress = true;
        }

        return progress;
    }

    /// <summary>Whether either queue has used buffers not taken yet.</summary>
    public bool HasUsedPending => _rx.UsedIndex != _rx.LastUsedIndex || _tx.UsedIndex != _tx.LastUsedIndex;

    /// <summary>Whether a connection still waits for credit (a stall to time out).</summary>
    /// <returns>True when some sender is queued.</returns>
    public bool HasQueuedSenders => _sendList.Count > 0;

    private static ulong Key(uint localPort, uint peerPort) => ((ulong)localPort << 32) | peerPort;

    private void Queue(GuestConnection connection)
    {
        if (!connection.Queued)
        {
            connection.Queued = true;
            _sendList.Add(connection);
        }
    }

    private void Owe(GuestConnection connection, PendingControl control)
    {
        connection.Pending |= control;
        Queue(connection);
    }

    private void PostRx(int buffer)
    {
        ReadOnlySpan<TestBuffer> chain = [TestBuffer.DeviceWritable(GuestLayout.RxBuffer(buffer), GuestLayout.RxBufferBytes)];
        ushort head = _rx.AddChain(chain);
        _rxBufferOfHead[head] = (ushort)buffer;
    }

    private void Kick(TestDriver queue, int fd, bool force)
    {
        if ((queue.KickNeeded() || force) && fd >= 0)
        {
            DeviceSession.Signal(fd);
            Counters.Kicks++;
        }
    }

    private bool ReclaimTx()
    {
        bool any = false;
        while (true)
        {
            UsedElement element;
            try
            {
                if (!_tx.TryTakeUsed(out element))
                {
                    return any;
                }
            }
            catch (InvalidOperationException e)
            {
                _checks.Add(Violation.BadUsedHead, "tx: " + e.Message);
                Broken = true;
                return any;
            }

            if (element.Length != 0)
            {
                _checks.Add(Violation.TxUsedLength, $"tx head {element.Id} returned with used.len {element.Length}");
            }

            _freeSlots[_freeSlotCount++] = _txSlotOfHead[element.Id];
            any = true;
        }
    }

    /// <summary>Sends control packets and data; returns whether the connection still owes something.</summary>
    private bool SendOwed(GuestConnection c, long now)
    {
        while (c.Pending != PendingControl.None)
        {
            PendingControl next = (PendingControl)((int)c.Pending & -(int)c.Pending);
            VsockOp op = next switch
            {
                PendingControl.Request => VsockOp.Request,
                PendingControl.Response => VsockOp.Response,
                PendingControl.CreditUpdate => VsockOp.CreditUpdate,
                PendingControl.CreditRequest => VsockOp.CreditRequest,
                PendingControl.Shutdown => VsockOp.Shutdown,
                _ => VsockOp.Rst,
            };
            if (!TrySend(c, op, op == VsockOp.Shutdown ? 3u : 0u, 0))
            {
                return true;
            }

            c.Pending &= ~next;
            if (op == VsockOp.CreditUpdate)
            {
                Counters.GuestCreditUpdates++;
            }
            else if (op == VsockOp.CreditRequest)
            {
                Counters.GuestCreditRequests++;
            }
            else if (op == VsockOp.Rst)
            {
                c.State = ConnectionState.Closed;
                _app.Closed(c);
                return false;
            }
        }

        if (c.State != ConnectionState.Established)
        {
            return false;
        }

        while (c.TxOffset < c.TxTarget)
        {
            uint credit = c.PeerBufAlloc - (c.TxCnt - c.PeerFwdCnt);
            if (credit == 0 || credit > c.PeerBufAlloc)
            {
                if (c.StalledSince == 0)
                {
                    c.StalledSince = now;
                }
                else if (!c.CreditRequested && now - c.StalledSince > StallBeforeRequest)
                {
                    c.CreditRequested = true;
                    c.Pending |= PendingControl.CreditRequest;
                }

                return true;
            }

            c.StalledSince = 0;
            c.CreditRequested = false;
            long inWrite = c.WriteSize - (c.TxOffset % c.WriteSize);
            int length = (int)Math.Min(Math.Min(inWrite, c.TxTarget - c.TxOffset), Math.Min(credit, (uint)GuestLayout.MaxPacketPayload));
            if (!TrySend(c, VsockOp.Rw, 0, length))
            {
                return true;
            }
        }

        return false;
    }

    private bool TrySend(GuestConnection c, VsockOp op, uint flags, int length)
    {
        if (_freeSlotCount == 0 || _tx.FreeDescriptors < (length > 0 ? 2 : 1))
        {
            return false;
        }

        int slot = _freeSlots[--_freeSlotCount];
        GuestAddress headerAddress = GuestLayout.TxHeader(slot);
        var header = new VsockHeader
        {
            SrcCid = Cid,
            DstCid = HostCid,
            SrcPort = c.LocalPort,
            DstPort = c.PeerPort,
            Len = (uint)length,
            Type = VsockType.Stream,
            Op = op,
            Flags = flags,
            BufAlloc = BufAlloc,
            FwdCnt = c.FwdCnt,
        };
        _memory.TryGetSpan(headerAddress, VsockHeader.Size, out Span<byte> headerBytes).ThrowIfError(headerAddress);
        header.Write(headerBytes);
        ushort head;
        if (length > 0)
        {
            GuestAddress payloadAddress = GuestLayout.TxPayload(slot);
            _memory.TryGetSpan(payloadAddress, length, out Span<byte> payload).ThrowIfError(payloadAddress);
            Pattern.Fill(payload, c.TxOffset, c.TxSeed);
            ReadOnlySpan<TestBuffer> chain = [TestBuffer.DeviceReadable(headerAddress, VsockHeader.Size), TestBuffer.DeviceReadable(payloadAddress, (uint)length)];
            head = _tx.AddChain(chain);
            c.TxOffset += length;
            c.TxCnt += (uint)length;
        }
        else
        {
            ReadOnlySpan<TestBuffer> chain = [TestBuffer.DeviceReadable(headerAddress, VsockHeader.Size)];
            head = _tx.AddChain(chain);
        }

        _txSlotOfHead[head] = (short)slot;
        _tx.Publish();
        _txAdded = true;
        c.LastSentFwdCnt = c.FwdCnt;
        Counters.TxPackets++;
        return true;
    }

    private void HandleRx(GuestAddress address, uint usedLength)
    {
        Counters.RxPackets++;
        if (usedLength < VsockHeader.Size)
        {
            _checks.Add(Violation.RxWithoutHeader, $"RX buffer at {address} returned with used.len {usedLength}");
            return;
        }

        _memory.TryGetSpan(address, (int)GuestLayout.RxBufferBytes, out Span<byte> buffer).ThrowIfError(address);
        VsockHeader header = VsockHeader.Read(buffer);
        int payloadLength = (int)Math.Min(header.Len, usedLength - VsockHeader.Size);
        if (header.Len > GuestLayout.RxBufferBytes - VsockHeader.Size || usedLength != VsockHeader.Size + header.Len)
        {
            _checks.Add(Violation.RxLengthMismatch, $"used.len {usedLength} for {header}");
            payloadLength = Math.Min(payloadLength, (int)GuestLayout.RxBufferBytes - VsockHeader.Size);
        }

        if (header.Op is < VsockOp.Request or > VsockOp.CreditRequest)
        {
            _checks.Add(Violation.InvalidOp, header.ToString());
            return;
        }

        if (header.Type != VsockType.Stream)
        {
            _checks.Add(Violation.InvalidType, header.ToString());
            return;
        }

        if (header.SrcCid != HostCid || header.DstCid != Cid)
        {
            _checks.Add(Violation.BadCid, header.ToString());
            return;
        }

        if (header.Op != VsockOp.Rw && header.Len != 0)
        {
            _checks.Add(Violation.ControlWithPayload, header.ToString());
        }

        if (header.Op == VsockOp.CreditRequest)
        {
            Counters.DeviceCreditRequests++;
        }
        else if (header.Op == VsockOp.CreditUpdate)
        {
            Counters.DeviceCreditUpdates++;
        }

        if (!_connections.TryGetValue(Key(header.DstPort, header.SrcPort), out GuestConnection? c)
            || (c.State == ConnectionState.Closed && header.Op == VsockOp.Request))
        {
            if (header.Op == VsockOp.Request)
            {
                c = _app.Accept(header.DstPort, header.SrcPort);
                if (c is null)
                {
                    return;
                }

                c.State = ConnectionState.Established;
                c.PeerBufAlloc = header.BufAlloc;
                c.PeerFwdCnt = header.FwdCnt;
                _connections[Key(c.LocalPort, c.PeerPort)] = c;
                Owe(c, PendingControl.Response);
            }
            else if (header.Op != VsockOp.Rst)
            {
                _checks.Add(Violation.UnknownConnection, header.ToString());
            }

            return;
        }

        if (c.State == ConnectionState.Closed)
        {
            Counters.LatePackets++;
            return;
        }

        c.PeerBufAlloc = header.BufAlloc;
        c.PeerFwdCnt = header.FwdCnt;
        switch (header.Op)
        {
            case VsockOp.Response:
                if (c.State != ConnectionState.Connecting)
                {
                    _checks.Add(Violation.UnexpectedPacket, "RESPONSE on an open connection: " + header);
                    break;
                }

                c.State = ConnectionState.Established;
                _app.Established(c);
                Queue(c);
                break;
            case VsockOp.Rw:
                Receive(c, header, buffer.Slice(VsockHeader.Size, payloadLength));
                break;
            case VsockOp.CreditRequest:
                Owe(c, PendingControl.CreditUpdate);
                break;
            case VsockOp.CreditUpdate:
                Queue(c);
                break;
            case VsockOp.Shutdown:
                if ((header.Flags & 2) != 0)
                {
                    c.PeerSendClosed = true;
                }

                if ((header.Flags & 3) == 3 && c.State != ConnectionState.Closing)
                {
                    Owe(c, PendingControl.Rst);
                }

                break;
            case VsockOp.Rst:
                if (c.State != ConnectionState.Closing && (c.TxOffset < c.TxTarget || c.Pending != PendingControl.None))
                {
                    _checks.Add(Violation.UnexpectedReset, $"RST with {c.TxTarget - c.TxOffset} bytes still to send: {header}");
                }

                c.State = ConnectionState.Closed;
                c.Pending = PendingControl.None;
                _app.Closed(c);
                break;
            case VsockOp.Request:
                _checks.Add(Violation.UnexpectedPacket, "REQUEST on an existing connection: " + header);
                break;
        }
    }

    private void Receive(GuestConnection c, VsockHeader header, ReadOnlySpan<byte> payload)
    {
        if (c.State != ConnectionState.Established && c.State != ConnectionState.Closing)
        {
            _checks.Add(Violation.UnexpectedPacket, $"RW in state {c.State}: {header}");
            return;
        }

        if (c.PeerSendClosed)
        {
            _checks.Add(Violation.UnexpectedPacket, "RW after SHUTDOWN(SEND): " + header);
        }

        uint inFlight = c.FwdCnt + (uint)payload.Length - c.LastSentFwdCnt;
        if (inFlight > BufAlloc)
        {
            _checks.Add(Violation.CreditOverrun, $"{inFlight} bytes outstanding against buf_alloc {BufAlloc}: {header}");
        }

        int mismatch = Pattern.FirstMismatch(payload, c.RxOffset, c.RxSeed);
        if (mismatch >= 0)
        {
            _checks.Add(Violation.DataMismatch, $"guest port {c.LocalPort} stream offset {c.RxOffset + mismatch}: got {payload[mismatch]}, expected {Pattern.At(c.RxOffset + mismatch, c.RxSeed)}");
        }

        _checks.CheckedBytes += payload.Length;
        c.RxOffset += payload.Length;
        c.FwdCnt += (uint)payload.Length;
        if (c.Echo)
        {
            c.TxTarget += payload.Length;
            Queue(c);
        }

        if (BufAlloc - (c.FwdCnt - c.LastSentFwdCnt) < CreditUpdateThreshold)
        {
            Owe(c, PendingControl.CreditUpdate);
        }

        _app.Received(c, payload.Length);
    }
}
