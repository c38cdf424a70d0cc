using System.Globalization;
using System.Net.Sockets;
using VhostUserVsock.Tests.Guest;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// Access rules (a VM's <c>allow</c> list in the config file, plus <c>--allow</c>) against a real Linux guest: the guest reaches an allowed host port, and a denied
/// one is refused as if nobody listened although a host program does; a host program reaches an allowed guest
/// port (uid condition met) and is closed without <c>OK</c> on a listening guest port whose rule names another uid.
/// </summary>
[Collection(RealGuestCollection.Name)]
public sealed class AccessRuleGuestTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Denied_connections_look_like_no_listener_to_the_guest_and_to_host_programs()
    {
        var image = RealGuestEnvironment.Require(GuestSuite.Bookworm);
        var ct = TestContext.Current.CancellationToken;
        uint uid = CurrentUid();
        // The host-to-guest rules are the VM's own (its allow list in the config file); the guest-to-host rule comes
        // from --allow, which applies to every VM and adds to the VM's rules.
        await using var daemon = await DaemonProcess.StartFromConfigAsync(
            $"    allow:\n      - host-to-guest:5301,uid={uid}\n      - host-to-guest:5303,uid={uid + 1}\n",
            logLevel: "debug",
            extraArguments: ["--allow", "guest-to-host:6301"],
            cancellationToken: ct);

        using var allowedListener = new HostPortListener(daemon.UdsPath, 6301, SocketType.Stream);
        using var deniedListener = new HostPortListener(daemon.UdsPath, 6302, SocketType.Stream);
        await using var guest = QemuGuest.Start(image, new QemuGuestOptions
        {
            VhostUserSocketPath = daemon.SocketPath,
            Timeout = TimeSpan.FromSeconds(150),
            CommandTimeout = TimeSpan.FromSeconds(120),
            Commands =
            [
                ScenarioCatalog.Cmd("echo", "-t", "20", "echo-client", ScenarioCatalog.HostCid, 6301, 65536),
                ScenarioCatalog.Cmd("refused", "-t", "20", "connect-refused", ScenarioCatalog.HostCid, 6302, 5000),
                new GuestCommand("denied-server", "vsocktest -a 100 -t 100 recv-server 5303", Background: true),
                ScenarioCatalog.Cmd("allowed-server", "-a", "60", "-t", "60", "recv-server", 5301, 4096),
            ],
        });
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(TimeSpan.FromSeconds(140));
        var ready = await guest.Ready.WaitAsync(GuestRun.ReadyTimeout, cts.Token);
        Assert.True(ready.VsockDevice && ready.Cid == 3, $"no vsock device or wrong CID.\n{guest.Describe()}\n{GuestRun.DaemonTail(daemon, 100)}");
        output.WriteLine($"ready after {guest.BootTime?.TotalSeconds:0.0} s, kernel {ready.Kernel}");

        // Guest to host: the allowed port echoes; the denied one is refused although a host program listens.
        using (var echo = await allowedListener.AcceptAsync(cts.Token))
        {
            await HostStreams.EchoToEndAsync(echo, cts.Token);
        }

        var echoResult = await guest.WaitForResultAsync("echo", TimeSpan.FromSeconds(60), cts.Token);
        Assert.True(echoResult.Succeeded, $"echo: {echoResult}\n{guest.Describe()}");
        var refused = await guest.WaitForResultAsync("refused", TimeSpan.FromSeconds(60), cts.Token);
        Assert.True(refused.Succeeded, $"the denied host port was not refused like one without listener: {refused}\n{guest.Describe()}");

        // Host to guest: the guest listens on both ports; the rule for 5303 names another uid.
        await guest.WaitForOutputAsync("allowed-server", "LISTENING", TimeSpan.FromSeconds(60), cts.Token);
        var denied = await GuestConnector.TryConnectAsync(daemon.UdsPath, 5303, SocketType.Stream, cts.Token);
        Assert.False(denied.Connected, "a host program with another uid reached guest port 5303");
        var allowed = await GuestConnector.ConnectAsync(daemon.UdsPath, 5301, SocketType.Stream, cts.Token);
        using (var socket = allowed.Socket!)
        {
            await HostStreams.SendPatternAsync(socket, 4096, 0, shutdown: true, cts.Token);
            await HostStreams.ReceiveToEndAsync(socket, null, cts.Token);
        }

        var server = await guest.WaitForResultAsync("allowed-server", TimeSpan.FromSeconds(60), cts.Token);
        Assert.True(server.Succeeded, $"allowed-server: {server}\n{guest.Describe()}");

        // Logged at debug (the console logger writes in the background: wait for the lines).
        foreach (string line in (string[])["to host port 6302 denied by the access rules", "to guest port 5303 denied by the access rules"])
        {
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (!daemon.Log.Contains(line, StringComparison.Ordinal))
            {
                Assert.True(waited.Elapsed < TimeSpan.FromSeconds(20), $"not logged: {line}\n{GuestRun.DaemonTail(daemon, 60)}");
                await Task.Delay(50, cts.Token); // poll interval; the loop is bounded by the 20 s timeout above
            }
        }
    }

    private static uint CurrentUid()
    {
        string line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("Uid:", StringComparison.Ordinal));
        return uint.Parse(line.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }
}
