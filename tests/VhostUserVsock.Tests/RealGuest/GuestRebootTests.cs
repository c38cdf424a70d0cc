using System.Diagnostics;
using System.Net.Sockets;
using VhostUserVsock.Tests.Guest;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// The guest reboots in place: QEMU and its vhost-user connection stay, the guest's driver resets
/// the device and starts it again. Host connections to the guest that was (its kernel is gone)
/// must be closed; the rebooted guest must carry traffic.
/// </summary>
[Collection(RealGuestCollection.Name)]
public sealed class GuestRebootTests(ITestOutputHelper output)
{
    /// <summary>How long after the new guest's GUEST-READY a stale host connection may stay open.</summary>
    private static readonly TimeSpan StaleLimit = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Guest_reboot_closes_host_connections_of_the_old_guest_and_the_new_guest_carries_traffic()
    {
        var image = RealGuestEnvironment.Require(GuestSuite.Bookworm);
        var ct = TestContext.Current.CancellationToken;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(TimeSpan.FromSeconds(150));
        await using var daemon = await DaemonProcess.StartAsync(cancellationToken: ct);
        // Every boot runs the same commands. 'rb' reboots only when the host sends it exactly one byte
        // (first boot); on the second boot the host sends none, so the guest finishes and powers off.
        await using var guest = QemuGuest.Start(image, new QemuGuestOptions
        {
            VhostUserSocketPath = daemon.SocketPath,
            AllowReboot = true,
            Timeout = TimeSpan.FromSeconds(120),
            CommandTimeout = TimeSpan.FromSeconds(100),
            Commands =
            [
                ScenarioCatalog.Cmd("hold", "-a", "60", "-t", "100", "-T", "110", "recv-server", 5201) with { Background = true },
                new GuestCommand("hw", "wait-output hold LISTENING 30"),
                new GuestCommand("rb", "vsocktest -a 60 -t 20 recv-server 5202 1 && echo REBOOTING && reboot -f"),
            ],
        });
        try
        {
            // ---- boot 1: a host connection to the guest, left open; then the guest reboots
            await guest.WaitForLineAsync(Nth("OUT hold LISTENING", 1), Timeout.InfiniteTimeSpan, cts.Token);
            var held = await GuestConnector.ConnectAsync(daemon.UdsPath, 5201, SocketType.Stream, cts.Token);
            using var stale = held.Socket!;
            await HostStreams.SendPatternAsync(stale, 4096, 0, shutdown: false, cts.Token);
            var staleEnd = ConnectionEnd.WatchAsync(stale, null, cts.Token);
            output.WriteLine($"boot 1: host connection to guest port 5201 open (host port {held.LocalPort}), 4 KiB sent");

            await guest.WaitForLineAsync(Nth("OUT rb LISTENING", 1), Timeout.InfiniteTimeSpan, cts.Token);
            await Gate(daemon, 1, cts.Token);
            await guest.WaitForLineAsync(Nth("OUT rb REBOOTING", 1), Timeout.InfiniteTimeSpan, cts.Token);
            output.WriteLine("boot 1: the guest reboots (reboot -f)");

            // ---- boot 2
            await guest.WaitForLineAsync(Nth("GUEST-READY", 2), GuestRun.ReadyTimeout, cts.Token);
            var readyAgain = Stopwatch.GetTimestamp();
            output.WriteLine("boot 2: GUEST-READY again (first boot: " + await guest.Ready + ")");
            var staleClosed = await Task.WhenAny(staleEnd, Task.Delay(StaleLimit, cts.Token)) == staleEnd;
            if (staleClosed)
            {
                var end = await staleEnd;
                output.WriteLine($"boot 2: the old guest's host connection ended ({end.How}) {Stopwatch.GetElapsedTime(readyAgain, end.At).TotalMilliseconds:0} ms after GUEST-READY");
            }
            else
            {
                output.WriteLine($"boot 2: the old guest's host connection is still open {StaleLimit.TotalSeconds:0} s after GUEST-READY");
                // diagnosis: a host write reaches the new kernel, which answers RST for a connection it does not know
                var wrote = Stopwatch.GetTimestamp();
                await HostStreams.SendPatternAsync(stale, 1, 0, shutdown: false, cts.Token);
                var closedByWrite = await Task.WhenAny(staleEnd, Task.Delay(TimeSpan.FromSeconds(5), cts.Token)) == staleEnd;
                output.WriteLine(closedByWrite
                    ? $"boot 2: after a 1-byte host write it ended ({(await staleEnd).How}) {Stopwatch.GetElapsedTime(wrote, (await staleEnd).At).TotalMilliseconds:0} ms later: the new guest answers RST"
                    : "boot 2: a 1-byte host write did not end it within 5 s either");
            }

            // the new guest carries traffic
            await guest.WaitForLineAsync(Nth("OUT hold LISTENING", 2), Timeout.InfiniteTimeSpan, cts.Token);
            var fresh = await GuestConnector.ConnectAsync(daemon.UdsPath, 5201, SocketType.Stream, cts.Token);
            using (var conn = fresh.Socket!)
            {
                await HostStreams.SendPatternAsync(conn, 65536, 0, shutdown: true, cts.Token);
                await HostStreams.ReceiveToEndAsync(conn, null, cts.Token);
            }
            await guest.WaitForLineAsync(Nth("OUT rb LISTENING", 2), Timeout.InfiniteTimeSpan, cts.Token);
            await Gate(daemon, 0, cts.Token);
            var outcome = await guest.Completion.WaitAsync(TimeSpan.FromSeconds(60), cts.Token);
            var hold = guest.Result("hold");
            output.WriteLine($"boot 2: {hold}; outcome {outcome}");

            Assert.True(outcome == GuestOutcome.Done, $"the rebooted guest did not finish: {outcome}\n{guest.Describe()}\n{GuestRun.DaemonTail(daemon, 80)}");
            Assert.True(hold is { Succeeded: true, Bytes: 65536 }, $"after the reboot, 64 KiB host->guest failed: {hold}\n{guest.Describe()}");
            daemon.AssertRunning("after the guest rebooted");
            Assert.True(
                staleClosed,
                $"the host connection to the guest from before the reboot (guest port 5201, host port {held.LocalPort}) was still open " +
                $"{StaleLimit.TotalSeconds:0} s after the rebooted guest's driver was up: the device kept the old guest's connections " +
                $"across the driver's reset, and a host application reading from it waits forever.\n{GuestRun.DaemonTail(daemon, 80)}");
        }
        finally
        {
            guest.Kill();
        }
    }

    private static async Task Gate(DaemonProcess daemon, int bytes, CancellationToken ct)
    {
        var gate = await GuestConnector.ConnectAsync(daemon.UdsPath, 5202, SocketType.Stream, ct);
        using var conn = gate.Socket!;
        await HostStreams.SendPatternAsync(conn, bytes, 0, shutdown: true, ct);
        await HostStreams.ReceiveToEndAsync(conn, null, ct);
    }

    /// <summary>Matches the <paramref name="n"/>-th line starting with <paramref name="prefix"/> (lines are offered in order).</summary>
    private static Func<string, bool> Nth(string prefix, int n)
    {
        int seen = 0;
        return line => line.StartsWith(prefix, StringComparison.Ordinal) && ++seen == n;
    }
}
