using System.Diagnostics;
using VsockLoad.Guest;
using VsockLoad.Host;
using VsockLoad.Report;

namespace VsockLoad.Scenarios;

/// <summary>
/// One host-initiated connection (<c>CONNECT Port</c>) to a guest listener; the host writes <c>Count</c>
/// pattern bytes in <c>WriteSize</c> writes, the guest checks them, then the host closes and the guest
/// expects SHUTDOWN and answers RST.
/// </summary>
internal sealed class HostToGuestStream : Scenario
{
    private const int Seed = 23;
    private GuestConnection? _connection;
    private HostEnd _host = null!;
    private long _startOffset;
    private long _closeDeadline;
    private bool _guestClosed;

    /// <summary>Creates the mode.</summary>
    /// <param name="options">Options.</param>
    /// <param name="checks">Checks.</param>
    /// <param name="cpuTicks">Backend CPU clock.</param>
    public HostToGuestStream(LoadOptions options, Checks checks, Func<(long Total, long Kernel)> cpuTicks)
        : base(options, checks, cpuTicks)
    {
    }

    /// <inheritdoc/>
    public override GuestConnection? Accept(uint localPort, uint peerPort)
    {
        if (localPort != Options.Port || _connection is not null)
        {
            return null;
        }

        _connection = new GuestConnection(localPort, peerPort, 0, Seed);
        return _connection;
    }

    /// <inheritdoc/>
    public override void Received(GuestConnection connection, int length)
    {
        NoteReceived(connection.RxOffset);
        if (StartTicks == 0 && connection.RxOffset >= Options.Warmup)
        {
            MarkStart();
            _startOffset = connection.RxOffset;
        }

        if (connection.RxOffset > Options.Count)
        {
            Checks.Add(Violation.ExtraData, $"guest read {connection.RxOffset} bytes of {Options.Count}");
        }

        if (connection.RxOffset >= Options.Count && EndTicks == 0)
        {
            MarkEnd();
            MeasuredUnits = connection.RxOffset - _startOffset;
            CloseHost(_host);
            _closeDeadline = Stopwatch.GetTimestamp() + (2 * Stopwatch.Frequency);
        }
    }

    /// <inheritdoc/>
    public override void Closed(GuestConnection connection)
    {
        _guestClosed = true;
        if (EndTicks == 0)
        {
            Checks.Add(Violation.UnexpectedReset, $"guest connection closed after {connection.RxOffset} of {Options.Count} bytes");
            Finished = true;
        }
    }

    /// <inheritdoc/>
    protected override void Begin()
    {
        _host = HostEnd.Connect(Options.UdsPath, Options.Port);
        _host.TxSeed = Seed;
        _host.WriteSize = Options.WriteSize;
        Hosts.Add(_host);
    }

    /// <inheritdoc/>
    protected override void HostConnected(HostEnd end)
    {
        if (_connection is null || _connection.PeerPort != end.HostPort)
        {
            Checks.Add(Violation.HostSocket, $"OK {end.HostPort} does not match the guest's REQUEST (port {_connection?.PeerPort})");
        }

        end.TxTarget = Options.Count;
        MarkStreamOpened();
        if (Options.Warmup == 0)
        {
            MarkStart();
        }

        HostWrite(end);
    }

    /// <inheritdoc/>
    protected override void HostClosed(HostEnd end)
    {
        if (EndTicks == 0)
        {
            Checks.Add(Violation.HostSocket, $"the backend closed the host socket ({(end.AwaitingOk ? "no OK" : $"after {end.TxOffset} bytes written")})");
            Finished = true;
        }
    }

    /// <inheritdoc/>
    protected override void Tick()
    {
        if (EndTicks != 0 && (_guestClosed || Stopwatch.GetTimestamp() > _closeDeadline))
        {
            CleanClose = _guestClosed;
            Finished = true;
        }
    }

    /// <inheritdoc/>
    protected override string Progress() =>
        $"host wrote {_host.TxOffset}, guest {(_connection is null ? "not connected" : $"{_connection.State} read {_connection.RxOffset}")}";
}
