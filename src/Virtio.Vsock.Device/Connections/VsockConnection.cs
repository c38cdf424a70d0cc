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
internal sealed partial class VsockConnection : IVsockIncomingConnection, IVsockEndpointEvents, ISignalSource
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
    private IVsockConnectCompletion? _connectCompletion;
    private CancellationTokenRegistration _cancellation;

    // Credit, wrapping u32 arithmetic throughout. The names are Linux's (struct virtio_vsock_sock), from this
    // end's point of view: _rxCnt counts bytes received from the guest (they came on the TX queue), _txCnt bytes
    // sent to it (on the RX queue). VsockMetrics names directions after the queues instead: TxBytes are bytes
    // the guest sent. Both conventions are the ones their readers expect; this comment is where they meet.
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
    // The last read from the host filled all it was offered: the next may take several RX buffers at once.
    private bool _hostBursting;
    private bool _hostReadable;
    private bool _hostEof;
    private bool _readRequested;
    private bool _writeRequested;
    private bool _creditStalled;
    private bool _creditAnswered; // the guest answered our CREDIT_REQUEST: send what its credit allows, however small
    private int _creditRequestsThisStall;

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
        _txBuffer = new TxBuffer((int)_bufAlloc, type == VsockType.SeqPacket ? muxer.Options.MaxBufferedMessages : 0, muxer.Budget);
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

    /// <summary>The smallest RW sent now: <see cref="MinChunk"/>, or a single byte once the guest answered our CREDIT_REQUEST.</summary>
    private uint SmallestRw => _creditAnswered ? 1u : MinChunk;

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
    public void StartConnecting(IVsockEndpoint endpoint, IVsockConnectCompletion completion, CancellationToken cancellationToken, long now)
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
        if (State != ConnectionState.Accepting)
        {
            // An answer that came after the connection stopped accepting (reset by a later packet of the same
            // batch, a timeout or a guest RST) is closed here: nothing else will ever take its endpoint.
            CloseAnsweredEndpoint();
        }

        if (State == ConnectionState.Closed)
        {
            return;
        }

        if ((flags & SignalAnswered) != 0)
        {
            OnAnswered();
        }

        if ((flags & SignalCancelled) != 0 && State == ConnectionState.Connecting)
        {
            FailConnect(new OperationCanceledException("The host connect was cancelled."));
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

    /// <summary>The loop caught an exception from this connection's work (its endpoint threw): reset it, only it.</summary>
    /// <param name="exception">What was thrown.</param>
    public void OnFault(Exception exception)
    {
        Interlocked.Increment(ref _muxer.Metrics.EndpointFaultsField);
        Trace.TraceWarning("vsock connection {0}: reset after an exception from its host endpoint: {1}", Key, exception);
        Reset(refused: false, "the host endpoint threw");
    }

    private void CloseAnsweredEndpoint() => CloseQuietly(Interlocked.Exchange(ref _answeredEndpoint, null), abort: true);

    /// <summary>Closes a host endpoint of this connection through <see cref="VsockMuxer.CloseQuietly"/>: one that throws while closing cannot hurt the loop.</summary>
    private void CloseQuietly(IVsockEndpoint? endpoint, bool abort) => _muxer.CloseQuietly(endpoint, abort, Key);

    private void OnAnswered()
    {
        if (State != ConnectionState.Accepting)
        {
            CloseAnsweredEndpoint();
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

}
