using System.Diagnostics;
using VsockLoad.Guest;
using VsockLoad.Host;
using VsockLoad.Report;

namespace VsockLoad.Scenarios;

/// <summary>
/// <c>Count</c> host-initiated connections, at most <c>Concurrency</c> at once: CONNECT, OK, write
/// <c>WriteSize</c> pattern bytes, close. Each is done when the guest has checked every byte, received
/// SHUTDOWN and answered RST.
/// </summary>
internal sealed class Connections : Scenario
{
    private long _opened;
    private long _completed;
    private int _open;

    /// <summary>Creates the mode.</summary>
    /// <param name="options">Options.</param>
    /// <param name="checks">Checks.</param>
    /// <param name="cpuTicks">Backend CPU clock.</param>
    public Connections(LoadOptions options, Checks checks, Func<(long Total, long Kernel)> cpuTicks)
        : base(options, checks, cpuTicks)
    {
        CleanClose = true;
    }

    /// <inheritdoc/>
    public override GuestConnection? Accept(uint localPort, uint peerPort) =>
        localPort == Options.Port ? new GuestConnection(localPort, peerPort, 0, SeedOf(peerPort)) : null;

    /// <inheritdoc/>
    public override void Closed(GuestConnection connection)
    {
        if (connection.RxOffset != Options.WriteSize)
        {
            Checks.Add(Violation.UnexpectedReset, $"guest port {connection.LocalPort} <- {connection.PeerPort}: closed after {connection.RxOffset} of {Options.WriteSize} bytes");
        }

        Complete();
    }

    /// <inheritdoc/>
    protected override void Begin() => MarkStart();

    /// <inheritdoc/>
    protected override void Tick()
    {
        while (_open < Options.Concurrency && _opened < Options.Count)
        {
            HostEnd end;
            try
            {
                end = HostEnd.Connect(Options.UdsPath, Options.Port);
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
            {
                Checks.Add(Violation.HostSocket, $"connect #{_opened}: {e.Message}");
                Finished = true;
                return;
            }

            end.WriteSize = Options.WriteSize;
            Hosts.Add(end);
            _opened++;
            _open++;
        }

        for (int i = Hosts.Count - 1; i >= 0; i--)
        {
            HostEnd end = Hosts[i];
            if (!end.AwaitingOk && end.TxOffset == end.TxTarget && end.TxTarget > 0)
            {
                CloseHost(end);
            }
        }
    }

    /// <inheritdoc/>
    protected override void HostConnected(HostEnd end)
    {
        end.TxSeed = SeedOf(end.HostPort);
        end.TxTarget = Options.WriteSize;
        HostWrite(end);
    }

    /// <inheritdoc/>
    protected override void HostClosed(HostEnd end)
    {
        if (end.AwaitingOk || end.TxOffset < end.TxTarget)
        {
            Checks.Add(Violation.HostSocket, $"the backend closed a host socket ({(end.AwaitingOk ? "no OK" : $"after {end.TxOffset} bytes")})");
            CloseHost(end);
            Complete();
        }
    }

    /// <inheritdoc/>
    protected override string Progress() => $"{_completed} of {Options.Count} connections done, {_open} open, {Hosts.Count} host sockets";

    private static int SeedOf(uint hostPort) => (int)(hostPort % 251);

    private void Complete()
    {
        _completed++;
        _open--;
        if (_completed == Options.Count)
        {
            MarkEnd();
            MeasuredUnits = Options.Count;
            Finished = true;
        }
    }
}
