using VhostUserVsock.Tests.RealGuest;
using VsockLoad;
using VsockLoad.Report;

namespace VhostUserVsock.Tests.LoadGenerator;

/// <summary>One daemon for all load-generator cases: each case is a new frontend on the same socket (as QEMU reconnecting).</summary>
public sealed class LoadGeneratorDaemon : IAsyncLifetime
{
    /// <summary>The daemon.</summary>
    public DaemonProcess Daemon { get; private set; } = null!;

    /// <inheritdoc/>
    public async ValueTask InitializeAsync() => Daemon = await DaemonProcess.StartAsync();

    /// <inheritdoc/>
    public async ValueTask DisposeAsync() => await Daemon.DisposeAsync();
}

/// <summary>
/// Runs every bench/VsockLoad mode for a small amount of traffic against the real daemon (a child
/// process, real vhost-user and Unix sockets, memfd guest memory) and asserts what the benchmark relies
/// on: the run finishes, zero protocol violations, and every byte was checked against the pattern.
/// Timing figures are not asserted (performance lives in the benchmark, not in tests).
/// </summary>
public sealed class LoadGeneratorTests(LoadGeneratorDaemon fixture) : IClassFixture<LoadGeneratorDaemon>
{
    [Theory]
    [InlineData("g2h", 65536, 8L << 20, false)]
    [InlineData("g2h", 4096, 2L << 20, true)]
    [InlineData("h2g", 65536, 8L << 20, false)]
    [InlineData("h2g", 4096, 2L << 20, true)]
    [InlineData("rr", 1, 200L, false)]
    [InlineData("conn", 1024, 40L, false)]
    public async Task EveryModeRunsCleanAgainstTheDaemon(string mode, int writeSize, long count, bool eventIdx)
    {
        DaemonProcess daemon = fixture.Daemon;
        daemon.AssertRunning("before the load run");
        var options = new LoadOptions
        {
            Mode = mode switch
            {
                "g2h" => LoadMode.GuestToHost,
                "h2g" => LoadMode.HostToGuest,
                "rr" => LoadMode.RequestResponse,
                _ => LoadMode.Connections,
            },
            WriteSize = writeSize,
            Count = count,
            Warmup = mode == "rr" ? 20 : 0,
            Concurrency = 8,
            EventIdx = eventIdx,
            MeasureLimit = false,
            Timeout = TimeSpan.FromSeconds(20),
        };
        using var backend = BackendProcess.Attach(daemon.SocketPath, daemon.UdsPath, daemon.ProcessId);
        var errors = new StringWriter();

        RunResult result = await Task.Run(() => LoadRunner.Run(options, backend, errors), TestContext.Current.CancellationToken);

        daemon.AssertRunning("after the load run");
        string context = $"{result}\n{errors}\n{daemon.Describe()}";
        Assert.True(result.Violations == 0, context);
        Assert.True(result.Measured == count, context);
        long expectedChecked = mode switch
        {
            "rr" => 2 * (count + options.Warmup),
            "conn" => count * writeSize,
            _ => count,
        };
        Assert.True(result.CheckedBytes == expectedChecked, $"checked {result.CheckedBytes}, expected {expectedChecked}\n{context}");
        Assert.True(result.CleanClose, context);
        Assert.True(result.BackendCpuSeconds is >= 0, context);
    }
}

/// <summary>The pattern check the load generator's byte verification rests on catches a changed, shifted or foreign byte.</summary>
public sealed class LoadPatternTests
{
    [Fact]
    public void FirstMismatchFindsEveryKindOfCorruption()
    {
        byte[] data = new byte[200_000];
        VsockLoad.Guest.Pattern.Fill(data, 12345, 17);
        Assert.Equal(-1, VsockLoad.Guest.Pattern.FirstMismatch(data, 12345, 17));

        data[150_000] ^= 1;
        Assert.Equal(150_000, VsockLoad.Guest.Pattern.FirstMismatch(data, 12345, 17));
        data[150_000] ^= 1;

        Assert.Equal(0, VsockLoad.Guest.Pattern.FirstMismatch(data, 12345 + 4096, 17)); // a chunk at the wrong offset
        Assert.Equal(0, VsockLoad.Guest.Pattern.FirstMismatch(data, 12345, 18)); // another connection's stream
    }
}
