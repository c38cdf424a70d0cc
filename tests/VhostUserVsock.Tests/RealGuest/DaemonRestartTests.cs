using System.Diagnostics;
using System.Net.Sockets;
using VhostUserVsock.Tests.Guest;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// The daemon dies under a running guest: QEMU's vhost-user chardev has <c>reconnect=1</c>, the daemon is
/// killed with SIGKILL mid-traffic and started again on the same socket paths. The guest's old connections
/// must end (ECONNRESET or end of stream in the guest; the host sockets closed), new connections must work
/// both ways, and the new daemon must not leak fds over a few connections.
/// </summary>
/// <remarks>
/// <para><b>Explicit (not run by default): QEMU cannot do this today.</b> QEMU's vhost-user-vsock device has no
/// reconnect support in any release (hw/virtio/vhost-user-vsock.c registers no chardev event handler, unlike
/// vhost-user-blk / vhost-user-base), and with <c>reconnect=N</c> the chardev connects asynchronously, so the
/// device's realize finds it unconnected and QEMU 7.2 (Debian 12) exits at start with "Failed to set msg fds.
/// vhost_backend_init failed: Protocol error" while the daemon is listening. The test keeps the whole
/// scenario so it can run (<c>dotnet test ... -- xUnit.Explicit=only</c>) against a QEMU that gains vsock
/// reconnect; until then it fails at its first step with that message.</para>
/// </remarks>
[Collection(RealGuestCollection.Name)]
public sealed class DaemonRestartTests(ITestOutputHelper output)
{
    private static readonly TimeSpan CloseLimit = TimeSpan.FromSeconds(10);

    [Fact(Explicit = true)]
    public async Task Daemon_killed_and_restarted_under_a_running_guest_ends_old_connections_and_serves_new_ones()
    {
        var image = RealGuestEnvironment.Require(GuestSuite.Bookworm);
        var ct = TestContext.Current.CancellationToken;
        string directory = Directory.CreateTempSubdirectory("vuvr-").FullName;
        try
        {
            await RunAsync(image, directory, ct);
        }
        finally
        {
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private async Task RunAsync(GuestImage image, string directory, CancellationToken ct)
    {
        DaemonProcess first = await DaemonProcess.StartAsync(cancellationToken: ct, directory: directory);
        await using var firstOwned = first;
        using var oldStreamListener = new HostPortListener(first.UdsPath, 6201, SocketType.Stream);
        using var newEchoListener = new HostPortListener(first.UdsPath, 6202, SocketType.Stream);
        await using var guest = QemuGuest.Start(image, new QemuGuestOptions
        {
            VhostUserSocketPath = first.SocketPath,
            VhostUserReconnectSeconds = 1,
            Timeout = TimeSpan.FromSeconds(200),
            CommandTimeout = TimeSpan.FromSeconds(150),
            Commands =
            [
                // Old connections: a guest->host stream and a host->guest one, both alive when the daemon dies.
                new GuestCommand("old-g2h", "vsocktest -t 40 -T 150 send 2 6201 4G", Background: true),
                new GuestCommand("old-h2g", "vsocktest -a 60 -t 40 -T 150 recv-server 5201", Background: true),
                // New connections once the old guest->host one ended (after the restart): both directions.
                new GuestCommand("new-srv", "vsocktest -a 140 -t 20 -T 150 echo-server 5202 3", Background: true),
                new GuestCommand(
                    "new-g2h",
                    "wait-output old-g2h '^(OK|FAIL)' 140 && for i in 1 2 3; do vsocktest -t 20 -T 40 echo-client 2 6202 65536 || exit 1; done",
                    Background: true),
            ],
        });
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(TimeSpan.FromSeconds(200));
        GuestReadyInfo ready;
        try
        {
            ready = await guest.Ready.WaitAsync(GuestRun.ReadyTimeout, cts.Token);
        }
        catch (InvalidOperationException e) when (guest.QemuOutput.Contains("vhost_backend_init failed", StringComparison.Ordinal))
        {
            Assert.Fail($"this QEMU cannot start vhost-user-vsock with reconnect=1 on its chardev (no vsock reconnect support):\n{e.Message}");
            throw;
        }

        Assert.True(ready.VsockDevice && ready.Cid == 3, $"no vsock device or wrong CID.\n{guest.Describe()}\n{GuestRun.DaemonTail(first, 100)}");
        output.WriteLine($"ready after {guest.BootTime?.TotalSeconds:0.0} s, kernel {ready.Kernel}, QEMU: {guest.CommandLine}");

        // ---- the old connections, in flight
        using var g2h = await oldStreamListener.AcceptAsync(cts.Token);
        var g2hProgress = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var g2hEnd = ConnectionEnd.WatchAsync(g2h, n => { if (n >= 4 << 20) g2hProgress.TrySetResult(); }, cts.Token);
        await g2hProgress.Task.WaitAsync(TimeSpan.FromSeconds(60), cts.Token);
        await guest.WaitForOutputAsync("old-h2g", "LISTENING", TimeSpan.FromSeconds(60), cts.Token);
        var attempt = await GuestConnector.ConnectAsync(first.UdsPath, 5201, SocketType.Stream, cts.Token);
        using var h2g = attempt.Socket!;
        await HostStreams.SendPatternAsync(h2g, 1 << 20, 0, shutdown: false, cts.Token);
        var h2gEnd = ConnectionEnd.WatchAsync(h2g, null, cts.Token);
        Assert.False(g2hEnd.IsCompleted, "the guest->host stream ended before the daemon was killed");

        // ---- the daemon dies (SIGKILL: no cleanup) and comes back on the same paths
        var killedAt = Stopwatch.GetTimestamp();
        await first.KillAsync(TimeSpan.FromSeconds(10));
        output.WriteLine($"daemon {first.ProcessId} killed with the two old connections in flight");
        var ended = await Task.WhenAll(g2hEnd, h2gEnd).WaitAsync(CloseLimit, cts.Token);
        output.WriteLine($"  old host sockets: guest->host {ended[0].How} ({ended[0].Bytes} bytes), host->guest {ended[1].How}, {Stopwatch.GetElapsedTime(killedAt).TotalMilliseconds:0} ms after the kill");

        DaemonProcess second = await DaemonProcess.StartAsync(cancellationToken: cts.Token, directory: directory, logLevel: "debug");
        await using var secondOwned = second;
        Assert.True(
            await second.WaitForLogAsync("frontend connected", TimeSpan.FromSeconds(30), cts.Token),
            $"QEMU did not reconnect to the restarted daemon within 30 s.\n{second.Describe()}\n{guest.Describe()}");
        output.WriteLine($"restarted daemon {second.ProcessId}; QEMU reconnected {Stopwatch.GetElapsedTime(killedAt).TotalSeconds:0.0} s after the kill");

        // ---- the guest's old connections end with a reset or end of stream, not a timeout
        var oldG2h = await guest.WaitForResultAsync("old-g2h", TimeSpan.FromSeconds(90), cts.Token);
        var oldH2g = await guest.WaitForResultAsync("old-h2g", TimeSpan.FromSeconds(90), cts.Token);
        output.WriteLine($"  guest old-g2h: {oldG2h}");
        output.WriteLine($"  guest old-h2g: {oldH2g}");
        foreach (var old in new[] { oldG2h, oldH2g })
        {
            // recv-server ends OK at end of stream; otherwise the connection must have failed with a reset
            // (ECONNRESET, or EPIPE on a send), not an idle timeout or the watchdog.
            string detail = old.ToString();
            bool endedWell = (old.Succeeded && old.Name == "old-h2g")
                || detail.Contains("errno=ECONNRESET", StringComparison.Ordinal)
                || detail.Contains("errno=EPIPE", StringComparison.Ordinal)
                || detail.Contains("reason=early-eof", StringComparison.Ordinal);
            Assert.True(endedWell, $"the guest's old connection did not end with a reset or end of stream: {detail}\n{second.Describe()}\n{guest.Describe()}");
        }

        // ---- new connections work both ways; the new daemon's fds come back after them
        int fdsBefore = second.OpenFdCount();
        for (int i = 0; i < 3; i++)
        {
            using var echo = await newEchoListener.AcceptAsync(cts.Token);
            await HostStreams.EchoToEndAsync(echo, cts.Token);
        }

        var newG2h = await guest.WaitForResultAsync("new-g2h", TimeSpan.FromSeconds(60), cts.Token);
        Assert.True(newG2h.Succeeded, $"new guest->host connections after the restart: {newG2h}\n{second.Describe()}\n{guest.Describe()}");
        await guest.WaitForOutputAsync("new-srv", "LISTENING", TimeSpan.FromSeconds(10), cts.Token);
        for (int i = 0; i < 3; i++)
        {
            var connect = await GuestConnector.ConnectAsync(second.UdsPath, 5202, SocketType.Stream, cts.Token);
            using var socket = connect.Socket!;
            var (sent, received) = await HostStreams.EchoClientAsync(socket, 65536, (uint)i, cts.Token);
            Assert.Equal(sent.Bytes, received.Bytes);
            Assert.Equal(sent.Crc32, received.Crc32);
        }

        var newSrv = await guest.WaitForResultAsync("new-srv", TimeSpan.FromSeconds(60), cts.Token);
        Assert.True(newSrv.Succeeded, $"new host->guest connections after the restart: {newSrv}\n{second.Describe()}");
        var settle = Stopwatch.StartNew();
        int fdsAfter = second.OpenFdCount();
        while (fdsAfter > fdsBefore && settle.Elapsed < TimeSpan.FromSeconds(15))
        {
            await Task.Delay(100, cts.Token);
            fdsAfter = second.OpenFdCount();
        }

        output.WriteLine($"restarted daemon fds: {fdsBefore} before 6 connections, {fdsAfter} after");
        Assert.True(fdsAfter <= fdsBefore, $"the restarted daemon leaked fds: {fdsBefore} -> {fdsAfter}\n{second.Describe()}");
        second.AssertRunning("at the end");
    }
}
