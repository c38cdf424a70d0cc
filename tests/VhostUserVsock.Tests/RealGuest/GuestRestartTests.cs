using System.Diagnostics;
using System.Net.Sockets;
using VhostUserVsock.Tests.Guest;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// The VMM dies: QEMU is killed with traffic in flight both ways, then a new QEMU boots against the
/// same running daemon (and once more after that guest powered off cleanly), with traffic again.
/// </summary>
[Collection(RealGuestCollection.Name)]
public sealed class GuestRestartTests(ITestOutputHelper output)
{
    private static readonly TimeSpan CloseLimit = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Qemu_killed_mid_traffic_then_restarted_against_the_same_daemon_carries_traffic_again()
    {
        var image = RealGuestEnvironment.Require(GuestSuite.Bookworm);
        var ct = TestContext.Current.CancellationToken;
        await using var daemon = await DaemonProcess.StartAsync(cancellationToken: ct);

        // ---- boot 1: an echo, then a guest->host stream and a host->guest stream left running
        using var echoListener = new HostPortListener(daemon.UdsPath, 6101, SocketType.Stream);
        using var streamListener = new HostPortListener(daemon.UdsPath, 6102, SocketType.Stream);
        await using (var first = QemuGuest.Start(image, new QemuGuestOptions
        {
            VhostUserSocketPath = daemon.SocketPath,
            Timeout = TimeSpan.FromSeconds(150),
            CommandTimeout = TimeSpan.FromSeconds(120),
            Commands =
            [
                ScenarioCatalog.Cmd("g1-echo", "-t", "20", "echo-client", ScenarioCatalog.HostCid, 6101, 65536),
                new GuestCommand("g1-stream", "vsocktest -t 100 -T 110 send 2 6102 4G", Background: true),
                ScenarioCatalog.Cmd("g1-hold", "-a", "60", "-t", "100", "-T", "110", "recv-server", 5101),
            ],
        }))
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(TimeSpan.FromSeconds(120));
            var ready = await first.Ready.WaitAsync(GuestRun.ReadyTimeout, cts.Token);
            Assert.True(ready.VsockDevice && ready.Cid == 3, $"boot 1: no vsock device or wrong CID.\n{first.Describe()}\n{GuestRun.DaemonTail(daemon, 100)}");
            output.WriteLine($"boot 1: ready after {first.BootTime?.TotalSeconds:0.0} s, kernel {ready.Kernel}");

            using (var echo = await echoListener.AcceptAsync(cts.Token))
                await HostStreams.EchoToEndAsync(echo, cts.Token);
            var echoResult = await first.WaitForResultAsync("g1-echo", TimeSpan.FromSeconds(60), cts.Token);
            Assert.True(echoResult.Succeeded, $"boot 1 echo: {echoResult}\n{first.Describe()}");

            // guest->host: read until 4 MiB arrived, keep reading after that
            using var g2h = await streamListener.AcceptAsync(cts.Token);
            var g2hProgress = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var g2hEnd = ConnectionEnd.WatchAsync(g2h, n => { if (n >= 4 << 20) g2hProgress.TrySetResult(); }, cts.Token);
            await g2hProgress.Task.WaitAsync(TimeSpan.FromSeconds(60), cts.Token);

            // host->guest: connected, 1 MiB delivered, more being written when QEMU dies
            await first.WaitForOutputAsync("g1-hold", "LISTENING", TimeSpan.FromSeconds(60), cts.Token);
            var attempt = await GuestConnector.ConnectAsync(daemon.UdsPath, 5101, SocketType.Stream, cts.Token);
            using var h2g = attempt.Socket!;
            await HostStreams.SendPatternAsync(h2g, 1 << 20, 0, shutdown: false, cts.Token);
            var h2gEnd = ConnectionEnd.WatchAsync(h2g, null, cts.Token);
            var h2gWriter = Task.Run(
                async () =>
                {
                    try
                    {
                        await HostStreams.SendPatternAsync(h2g, 1L << 40, 0, shutdown: false, cts.Token);
                        return "writer finished?";
                    }
                    catch (SocketException e)
                    {
                        return $"writer: socket error {e.SocketErrorCode}";
                    }
                    catch (ObjectDisposedException)
                    {
                        return "writer: socket disposed";
                    }
                },
                cts.Token);
            if (g2hEnd.IsCompleted)
                Assert.Fail($"the guest->host stream ended before QEMU was killed: {await g2hEnd}");

            var killedAt = Stopwatch.GetTimestamp();
            first.Kill();
            output.WriteLine("boot 1: QEMU killed with a guest->host and a host->guest stream in flight");
            var ended = await Task.WhenAll(g2hEnd, h2gEnd).WaitAsync(CloseLimit + TimeSpan.FromSeconds(5), cts.Token)
                .ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : null, TaskScheduler.Default);
            Assert.True(
                ended is not null,
                $"the host connections of the killed guest were not closed within {CloseLimit.TotalSeconds + 5:0} s " +
                $"(guest->host ended: {g2hEnd.IsCompleted}, host->guest ended: {h2gEnd.IsCompleted}).\n{GuestRun.DaemonTail(daemon, 100)}");
            foreach (var (label, end) in new[] { ("guest->host", ended![0]), ("host->guest", ended[1]) })
            {
                var after = Stopwatch.GetElapsedTime(killedAt, end.At);
                output.WriteLine($"  {label} host socket: {end.How} {after.TotalMilliseconds:0} ms after the kill ({end.Bytes} bytes read)");
                Assert.True(after <= CloseLimit, $"{label}: host socket closed {after.TotalSeconds:0.0} s after the kill");
            }
            output.WriteLine("  host->guest " + await h2gWriter.WaitAsync(TimeSpan.FromSeconds(10), cts.Token));
            await first.Exited.WaitAsync(TimeSpan.FromSeconds(15), cts.Token);
        }
        daemon.AssertRunning("after QEMU was killed");

        // ---- boot 2 against the same daemon: traffic both ways; the guest then powers off cleanly
        var second = await GuestRun.RunAsync(
            image,
            daemon,
            [
                ScenarioCatalog.EchoGuestToHost("g2-echo-g2h", 6111, 1 << 20),
                ScenarioCatalog.EchoHostToGuest("g2-echo-h2g", 5111, 1 << 20),
                ScenarioCatalog.BulkGuestToHost("g2-bulk-g2h", 6113, 8 << 20),
            ],
            timeout: TimeSpan.FromSeconds(120),
            commandTimeout: TimeSpan.FromSeconds(60),
            ct);
        output.WriteLine("boot 2 (after the kill): " + second.Summary());
        AssertAllPassed(second);
        daemon.AssertRunning("after the second guest powered off");

        // ---- boot 3 after a clean poweroff
        var third = await GuestRun.RunAsync(
            image,
            daemon,
            [
                ScenarioCatalog.EchoGuestToHost("g3-echo-g2h", 6121, 65536),
                ScenarioCatalog.EchoHostToGuest("g3-echo-h2g", 5121, 65536),
            ],
            timeout: TimeSpan.FromSeconds(120),
            commandTimeout: TimeSpan.FromSeconds(60),
            ct);
        output.WriteLine("boot 3 (after a clean poweroff): " + third.Summary());
        AssertAllPassed(third);
        daemon.AssertRunning("at the end");
    }

    private static void AssertAllPassed(GuestRunReport report)
    {
        report.AssertClean();
        foreach (var s in report.Scenarios.Values)
            Assert.True(s.Passed, $"{s.Name}: {s.Failure}");
    }
}
