using VhostUserVsock.Tests.Guest;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// One boot of the bookworm (Linux 6.1) guest against one daemon, running every data-path
/// scenario in order; each test of <see cref="BookwormGuestTests"/> checks one scenario's outcome.
/// </summary>
public sealed class BookwormRunFixture : IAsyncLifetime
{
    /// <summary>64 MiB: the bulk transfer size.</summary>
    public const long BulkBytes = 64L << 20;

    private readonly CancellationTokenSource _cancel = new();
    private Task<GuestRunReport>? _run;
    private DaemonProcess? _daemon;
    private string? _missing;

    /// <summary>The scenarios of the boot, in guest order.</summary>
    public static IReadOnlyList<GuestScenario> Scenarios() =>
    [
        ScenarioCatalog.EchoGuestToHost("echo-g2h", 6001, 1 << 20),
        ScenarioCatalog.EchoHostToGuest("echo-h2g", 5001, 1 << 20),
        ScenarioCatalog.BulkGuestToHost("bulk-g2h", 6003, BulkBytes),
        ScenarioCatalog.BulkHostToGuest("bulk-h2g", 5003, BulkBytes),
        ScenarioCatalog.SeqPacketGuestToHost("seq-g2h", 6004, ScenarioCatalog.SeqSizes),
        ScenarioCatalog.SeqPacketHostToGuest("seq-h2g", 5004, ScenarioCatalog.SeqSizesToGuest),
        ScenarioCatalog.HalfCloseGuestToHost("half-g2h", 6005, 65536),
        ScenarioCatalog.HalfCloseHostToGuest("half-h2g", 5005, 65536),
        ScenarioCatalog.RefusedGuestToHost("refused-g2h", 6006, stale: false),
        ScenarioCatalog.RefusedGuestToHost("refused-g2h-stale", 6016, stale: true),
        ScenarioCatalog.RefusedHostToGuest("refused-h2g", 5006, gatePort: 5007),
        ScenarioCatalog.ManyGuestToHost("many-g2h", 6008, 100, 65536),
        ScenarioCatalog.ManyHostToGuest("many-h2g", 5008, 100, 65536),
    ];

    /// <inheritdoc/>
    public ValueTask InitializeAsync()
    {
        _missing = RealGuestEnvironment.Missing(GuestSuite.Bookworm, out var image);
        if (image is not null)
            _run = RunAsync(image);
        return ValueTask.CompletedTask;
    }

    /// <summary>The whole run's report (skips or fails the calling test when the guest is missing).</summary>
    public async Task<GuestRunReport> ReportAsync()
    {
        if (_missing is not null)
            RealGuestEnvironment.SkipOrFail(GuestSuite.Bookworm, _missing);
        return await _run!.WaitAsync(TestContext.Current.CancellationToken);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (_run is not null)
        {
            if (await Task.WhenAny(_run, Task.Delay(TimeSpan.FromSeconds(30))) != _run)
                await _cancel.CancelAsync();
            try
            {
                await _run.WaitAsync(TimeSpan.FromSeconds(30));
            }
            catch (Exception)
            {
                // reported by the tests
            }
        }
        if (_daemon is not null)
            await _daemon.DisposeAsync();
        _cancel.Dispose();
    }

    private async Task<GuestRunReport> RunAsync(GuestImage image)
    {
        _daemon = await DaemonProcess.StartAsync(cancellationToken: _cancel.Token);
        return await GuestRun.RunAsync(
            image,
            _daemon,
            Scenarios(),
            timeout: TimeSpan.FromSeconds(270),
            commandTimeout: TimeSpan.FromSeconds(150),
            _cancel.Token);
    }
}
