using System.Diagnostics;
using VsockLoad.Guest;
using VsockLoad.Host;
using VsockLoad.Report;

namespace VsockLoad.Scenarios;

/// <summary>
/// One guest-initiated connection to host port <c>Port</c> (the tool listens on <c>uds_path_Port</c>);
/// the guest streams <c>Count</c> pattern bytes in <c>WriteSize</c> writes, the host checks them, then
/// the guest sends SHUTDOWN and expects RST plus end of stream on the host socket.
/// </summary>
internal sealed class GuestToHostStream : Scenario
{
    private const int Seed = 17;
    private GuestConnection _connection = null!;
    private HostEnd? _host;
    private long _startOffset;
    private long _closeDeadline;
    private bool _guestClosed;
    private bool _hostClosed;

    /// <summary>Creates the mode.</summary>
    /// <param name="options">Options.</param>
    /// <param name="checks">Checks.</param>
    /// <param name="cpuTicks">Backend CPU clock.</param>
    public GuestToHostStream(LoadOptions options, Checks checks, Func<(long Total, long Kernel)> cpuTicks)
        : base(options, checks, cpuTicks)
    {
    }

    /// <inheritdoc/>
    public override GuestConnection? Accept(uint localPort, uint peerPort) => null;

    /// <inheritdoc/>
    public override void Established(GuestConnection connection)
    {
        connection.TxTarget = Options.Count;
        MarkStreamOpened();
        if (Options.Warmup == 0)
        {
            MarkStart();
        }
    }

    /// <inheritdoc/>
    public override void Closed(GuestConnection connection) => _guestClosed = true;

    /// <inheritdoc/>
    protected override void Begin()
    {
        Listen(Options.Port);
        _connection = new GuestConnection(50_000, Options.Port, Seed, 0) { WriteSize = Options.WriteSize };
        Guest.Connect(_connection);
    }

    /// <inheritdoc/>
    protected override void HostAccepted(HostEnd end)
    {
        if (_host is not null)
        {
            Checks.Add(Violation.HostSocket, "a second connection on the listener");
            CloseHost(end);
            return;
        }

        _host = end;
        end.RxSeed = Seed;
    }

    /// <inheritdoc/>
    protected override void HostReceived(HostEnd end, int length)
    {
        NoteReceived(end.RxOffset);
        if (StartTicks == 0 && end.RxOffset >= Options.Warmup)
        {
            MarkStart();
            _startOffset = end.RxOffset;
        }

        if (end.RxOffset > Options.Count)
        {
            Checks.Add(Violation.ExtraData, $"host read {end.RxOffset} bytes of {Options.Count}");
        }

        if (end.RxOffset >= Options.Count && EndTicks == 0)
        {
            MarkEnd();
            MeasuredUnits = end.RxOffset - _startOffset;
            Guest.Shutdown(_connection);
            _closeDeadline = Stopwatch.GetTimestamp() + (2 * Stopwatch.Frequency);
        }
    }

    /// <inheritdoc/>
    protected override void HostClosed(HostEnd end)
    {
        _hostClosed = true;
        if (EndTicks == 0)
        {
            Checks.Add(Violation.HostSocket, $"the backend closed the host socket after {end.RxOffset} of {Options.Count} bytes");
            Finished = true;
        }
    }

    /// <inheritdoc/>
    protected override void Tick()
    {
        if (EndTicks != 0 && ((_guestClosed && _hostClosed) || Stopwatch.GetTimestamp() > _closeDeadline))
        {
            CleanClose = _guestClosed && _hostClosed;
            Finished = true;
        }

        if (_connection.State == ConnectionState.Closed && EndTicks == 0)
        {
            Finished = true;
        }
    }

    /// <inheritdoc/>
    protected override string Progress() =>
        $"guest {_connection.State}, sent {_connection.TxOffset}, host read {_host?.RxOffset ?? 0}, peer credit buf_alloc {_connection.PeerBufAlloc} fwd_cnt {_connection.PeerFwdCnt} tx_cnt {_connection.TxCnt}";
}
