using System.Diagnostics;
using System.Net.Sockets;
using Virtio.Vsock.Backends.Unix;
using Virtio.Vsock.Device.Tests.Unix;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.UnixBackend;

/// <summary>Connections nobody takes: the guest gets RST fast, the host program sees its socket closed.</summary>
/// <remarks>
/// "Fast" is asserted without a stopwatch bound: every timeout that could also end the attempt (the device's connect
/// timeout, the backend's, the simulated guest's) is set to <see cref="NeverFires"/>, so an answer within the
/// test's own timeout can only be the immediate one. Tests of a timeout check its lower bound only.
/// </remarks>
public sealed class UnixBackendRefusalTests
{
    private static readonly TimeSpan NeverFires = TimeSpan.FromMinutes(5);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact(Timeout = 20_000)]
    public async Task GuestConnectToAMissingStaleOrMistypedSocketGetsRstQuickly()
    {
        await using var h = new UnixBackendHarness(
            new VsockDeviceOptions { ConnectTimeout = NeverFires },
            new GuestSimulatorOptions { ConnectTimeout = NeverFires },
            path => new UnixSocketBackendOptions { UdsPath = path, GuestConnectTimeout = NeverFires });
        using var sockets = new UnixTestSockets();
        sockets.CreateStaleSocketFile(h.HostPortPath(7001));
        using Socket streamListener = h.ListenOnHostPort(7002);
        (uint Port, VsockType Type)[] cases = [(7000, VsockType.Stream), (7001, VsockType.Stream), (7002, VsockType.SeqPacket)];
        foreach ((uint port, VsockType type) in cases)
        {
            GuestSocketException refused = await Assert.ThrowsAsync<GuestSocketException>(() => h.Guest.ConnectAsync(port, type, Token));
            Assert.Contains("refused", refused.Message, StringComparison.Ordinal);
        }

        Assert.Equal(3, h.Backend.Counters.GuestConnectsRefused);
        Assert.Equal(0, h.Backend.Counters.OpenSockets);
    }

    [Fact(Timeout = 20_000)]
    public async Task GuestConnectToAListenerThatNeverAcceptsIsRefusedAfterTheConnectTimeout()
    {
        await using var h = new UnixBackendHarness(
            new VsockDeviceOptions { ConnectTimeout = NeverFires },
            new GuestSimulatorOptions { ConnectTimeout = NeverFires },
            path => new UnixSocketBackendOptions { UdsPath = path, GuestConnectTimeout = TimeSpan.FromMilliseconds(300) });
        using Socket listener = h.ListenOnHostPort(7003, backlog: 0);
        var connector = new UnixPortConnector(h.UdsPath);
        var fillers = new List<Socket>();
        try
        {
            // Fill the backlog (nobody accepts).
            while (fillers.Count < 64)
            {
                UnixConnectResult result = connector.TryConnect(7003, VsockType.Stream);
                if (!result.IsConnected)
                {
                    Assert.Equal(UnixConnectStatus.Busy, result.Status);
                    break;
                }

                fillers.Add(result.Socket!);
            }

            // Only the backend's 300 ms timeout can refuse it: not before it, and not by any other timeout.
            var watch = Stopwatch.StartNew();
            GuestSocketException refused = await Assert.ThrowsAsync<GuestSocketException>(() => h.Guest.ConnectAsync(7003, cancellationToken: Token));
            Assert.Contains("refused", refused.Message, StringComparison.Ordinal);
            Assert.True(watch.ElapsedMilliseconds >= 250, $"refused after {watch.ElapsedMilliseconds} ms, before the backend's connect timeout");
        }
        finally
        {
            fillers.ForEach(s => s.Dispose());
        }
    }

    [Fact(Timeout = 20_000)]
    public async Task HostConnectToAGuestPortNobodyListensOnClosesTheHostSocket()
    {
        // The guest's RST closes it: the device's connect timeout never fires within the test.
        await using var h = new UnixBackendHarness(new VsockDeviceOptions { ConnectTimeout = NeverFires });
        using Socket host = await UnixTestSockets.ConnectAsync(h.UdsPath);
        await host.SendAsync("CONNECT 7100\nsome data"u8.ToArray(), SocketFlags.None, Token);
        Assert.Empty(await UnixTestSockets.ReadToEndAsync(host));
        Assert.True(await UnixTestSockets.EventuallyAsync(() => h.Backend.Counters.HostConnectsFailed == 1));
        Assert.True(await UnixTestSockets.EventuallyAsync(() => h.Backend.Counters.OpenSockets == 0));

        // The host socket is closed before the device's table drops the connection: the backend's counter can reach 0
        // first, so wait for the device's count too.
        Assert.True(await UnixTestSockets.EventuallyAsync(() => h.Device.ConnectionCount == 0), "the device kept the refused connection");
    }

    [Fact(Timeout = 20_000)]
    public async Task HostConnectTheGuestNeverAnswersIsClosedAfterTheConnectTimeout()
    {
        await using var h = new UnixBackendHarness(new VsockDeviceOptions { ConnectTimeout = TimeSpan.FromMilliseconds(300) });
        h.Guest.ClaimRawPort(7102);
        using Socket host = await UnixTestSockets.ConnectAsync(h.UdsPath);
        var watch = Stopwatch.StartNew();
        await host.SendAsync("CONNECT 7102\n"u8.ToArray(), SocketFlags.None, Token);
        Assert.Empty(await UnixTestSockets.ReadToEndAsync(host));
        Assert.True(watch.ElapsedMilliseconds >= 250, $"closed after {watch.ElapsedMilliseconds} ms, before the device's connect timeout");
        Assert.True(await UnixTestSockets.EventuallyAsync(() => h.Backend.Counters.HostConnectsFailed == 1 && h.Backend.Counters.OpenSockets == 0));
    }

    [Fact(Timeout = 20_000)]
    public async Task HostConnectWithAMalformedLineIsClosedAndTheListenerKeepsServing()
    {
        await using var h = new UnixBackendHarness();
        using GuestListener listener = h.Guest.Listen(7101);
        using (Socket bad = await UnixTestSockets.ConnectAsync(h.UdsPath))
        {
            await bad.SendAsync("CONNECT nope\n"u8.ToArray(), SocketFlags.None, Token);
            Assert.Empty(await UnixTestSockets.ReadToEndAsync(bad));
        }

        using (Socket early = await UnixTestSockets.ConnectAsync(h.UdsPath))
        {
            await early.SendAsync("CONNE"u8.ToArray(), SocketFlags.None, Token);
        }

        Task echo = Task.Run(async () => await HostIo.EchoAsync(await listener.AcceptAsync(Token), Token), Token);
        (Socket good, _) = await h.ConnectToGuestAsync(7101, "x"u8.ToArray(), Token);
        using (good)
        {
            Assert.Equal("x"u8.ToArray(), await UnixTestSockets.ReadExactlyOrEofAsync(good, 1));
            good.Shutdown(SocketShutdown.Send);
            await echo;
        }

        Assert.True(await UnixTestSockets.EventuallyAsync(() => h.Backend.Counters.StreamListener.Failed == 2));
    }

    [Fact(Timeout = 20_000)]
    public async Task HostConnectsBeforeTheGuestDriverRunsAreClosed()
    {
        // A device whose queues never started: ConnectAsync fails with NotRunning.
        string directory = Directory.CreateTempSubdirectory("vub").FullName;
        try
        {
            string path = Path.Combine(directory, "v.sock");
            await using var backend = new UnixSocketBackend(new UnixSocketBackendOptions { UdsPath = path });
            using var device = new VsockDevice(new VsockDeviceOptions(), backend, new NullNotifier());
            backend.Start();
            using Socket host = await UnixTestSockets.ConnectAsync(path);
            await host.SendAsync("CONNECT 1234\n"u8.ToArray(), SocketFlags.None, Token);
            Assert.Empty(await UnixTestSockets.ReadToEndAsync(host));
            Assert.True(await UnixTestSockets.EventuallyAsync(() => backend.Counters.HostConnectsFailed == 1));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private sealed class NullNotifier : IVsockDeviceNotifier
    {
        public void NotifyQueue(int queueIndex)
        {
        }
    }
}
