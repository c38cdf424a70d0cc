using System.Diagnostics;
using VsockLoad.Guest;
using VsockLoad.Host;
using VsockLoad.Report;

namespace VsockLoad.Scenarios;

/// <summary>
/// One host-initiated connection; the host writes 1 byte, the guest echoes 1 byte back, the host waits
/// for it before the next: <c>Warmup</c> + <c>Count</c> round trips, each timed at the host socket.
/// </summary>
internal sealed class RequestResponse : Scenario
{
    private const int HostSeed = 29;
    private const int GuestSeed = 31;
    private readonly long[] _latencies;
    private GuestConnection? _connection;
    private HostEnd _host = null!;
    private long _sentAt;
    private long _done;
    private long _closeDeadline;
    private bool _guestClosed;

    /// <summary>Creates the mode.</summary>
    /// <param name="options">Options.</param>
    /// <param name="checks">Checks.</param>
    /// <param name="cpuTicks">Backend CPU clock.</param>
    public RequestResponse(LoadOptions options, Checks checks, Func<(long Total, long Kernel)> cpuTicks)
        : base(options, checks, cpuTicks)
    {
        _latencies = new long[options.Count];
    }

    /// <summary>The round-trip times in Stopwatch ticks (measured ones only).</summary>
    public ReadOnlySpan<long> Latencies => _latencies.AsSpan(0, (int)Math.Max(0, _done - Options.Warmup));

    /// <inheritdoc/>
    public override GuestConnection? Accept(uint localPort, uint peerPort)
    {
        if (localPort != Options.Port || _connection is not null)
        {
            return null;
        }

        _connection = new GuestConnection(localPort, peerPort, GuestSeed, HostSeed) { Echo = true, WriteSize = 1 };
        return _connection;
    }

    /// <inheritdoc/>
    public override void Closed(GuestConnection connection)
    {
        _guestClosed = true;
        if (EndTicks == 0)
        {
            Checks.Add(Violation.UnexpectedReset, $"guest connection closed after {_done} round trips");
            Finished = true;
        }
    }

    /// <inheritdoc/>
    protected override void Begin()
    {
        _host = HostEnd.Connect(Options.UdsPath, Options.Port);
        _host.TxSeed = HostSeed;
        _host.RxSeed = GuestSeed;
        _host.WriteSize = 1;
        Hosts.Add(_host);
    }

    /// <inheritdoc/>
    protected override void HostConnected(HostEnd end)
    {
        if (Options.Warmup == 0)
        {
            MarkStart();
        }

        SendRequest(end);
    }

    /// <inheritdoc/>
    protected override void HostReceived(HostEnd end, int length)
    {
        long now = Stopwatch.GetTimestamp();
        if (end.RxOffset != _done + 1)
        {
            Checks.Add(Violation.ExtraData, $"{end.RxOffset} answer bytes after {_done + 1} requests");
        }

        if (_done >= Options.Warmup)
        {
            _latencies[_done - Options.Warmup] = now - _sentAt;
        }

        _done++;
        if (_done == Options.Warmup)
        {
            MarkStart();
        }

        if (_done == Options.Warmup + Options.Count)
        {
            MarkEnd();
            MeasuredUnits = Options.Count;
            CloseHost(end);
            _closeDeadline = Stopwatch.GetTimestamp() + (2 * Stopwatch.Frequency);
            return;
        }

        SendRequest(end);
    }

    /// <inheritdoc/>
    protected override void HostClosed(HostEnd end)
    {
        if (EndTicks == 0)
        {
            Checks.Add(Violation.HostSocket, $"the backend closed the host socket after {_done} round trips");
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
    protected override string Progress() => $"{_done} of {Options.Warmup + Options.Count} round trips";

    private void SendRequest(HostEnd end)
    {
        end.TxTarget++;
        _sentAt = Stopwatch.GetTimestamp();
        HostWrite(end);
    }
}
