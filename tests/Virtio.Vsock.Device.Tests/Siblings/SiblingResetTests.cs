using Virtio.Vsock.Device.Siblings;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.Siblings;

/// <summary>A VM that stops (its VMM is killed), restarts or leaves: its siblings' guests get RST for every connection with it.</summary>
public sealed class SiblingResetTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static async Task<(GuestSocket AToB, GuestSocket BFromA, GuestSocket BToA, GuestSocket AFromB)> ConnectBothWays(SiblingVm a, SiblingVm b, uint port)
    {
        using GuestListener atA = a.Guest.Listen(port);
        using GuestListener atB = b.Guest.Listen(port);
        GuestSocket aToB = await a.Guest.ConnectToAsync(b.Cid, port, cancellationToken: Token);
        GuestSocket bFromA = await atB.AcceptAsync(Token);
        GuestSocket bToA = await b.Guest.ConnectToAsync(a.Cid, port, cancellationToken: Token);
        GuestSocket aFromB = await atA.AcceptAsync(Token);
        await SiblingEchoTests.Echo(aToB, bFromA, 10_000, 1);
        await SiblingEchoTests.Echo(bToA, aFromB, 10_000, 2);
        return (aToB, bFromA, bToA, aFromB);
    }

    [Fact(Timeout = 30_000)]
    public async Task PeerVmKilledResetsConnectionsThenRestartedPeerIsReachableAgain()
    {
        using var harness = new SiblingHarness();
        SiblingVm a = harness.Add(3);
        SiblingVm b = harness.Add(4);
        var (aToB, _, _, aFromB) = await ConnectBothWays(a, b, 5600);

        // A transfer is in flight when B's VMM dies.
        Task flood = aToB.SendAsync(new byte[8 * 1024 * 1024], Token);
        b.Kill();
        await aToB.Completion.WaitAsync(TimeSpan.FromSeconds(5), Token);
        await aFromB.Completion.WaitAsync(TimeSpan.FromSeconds(5), Token);
        Assert.True(aToB.WasReset);
        Assert.True(aFromB.WasReset);
        await Assert.ThrowsAnyAsync<Exception>(() => flood);
        await Harness.WaitUntil(() => a.Device.SiblingConnectionCount == 0, what: "A forgot B's connections");
        Assert.Equal(2, a.Siblings.PeerResetFlows);

        // While B is down, connecting to it fails at once.
        var started = DateTime.UtcNow;
        await Assert.ThrowsAsync<GuestSocketException>(() => a.Guest.ConnectToAsync(4, 5600, cancellationToken: Token));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(1.9), "an RST, not the guest's 2 s connect timeout");

        // B boots again on the same device: traffic both ways again.
        b.Boot();
        var (aToB2, bFromA2, _, _) = await ConnectBothWays(a, b, 5601);
        await SiblingEchoTests.Echo(aToB2, bFromA2, 200_000, 3);
        Assert.Equal(0, a.Guest.MalformedRxPackets);
        Assert.Equal(0, b.Guest.MalformedRxPackets);
    }

    [Fact(Timeout = 30_000)]
    public async Task OwnVmKilledResetsThePeersSide()
    {
        using var harness = new SiblingHarness();
        SiblingVm a = harness.Add(3);
        SiblingVm b = harness.Add(4);
        var (_, bFromA, bToA, _) = await ConnectBothWays(a, b, 5700);
        a.Kill();
        await bFromA.Completion.WaitAsync(TimeSpan.FromSeconds(5), Token);
        await bToA.Completion.WaitAsync(TimeSpan.FromSeconds(5), Token);
        Assert.True(bFromA.WasReset);
        Assert.True(bToA.WasReset);
        await Harness.WaitUntil(() => b.Device.SiblingConnectionCount == 0);
    }

    [Fact(Timeout = 30_000)]
    public async Task TransportResetOfOneGuestResetsThePeersSide()
    {
        using var harness = new SiblingHarness();
        SiblingVm a = harness.Add(3);
        SiblingVm b = harness.Add(4);
        var (aToB, bFromA, bToA, aFromB) = await ConnectBothWays(a, b, 5800);
        a.Device.SendTransportReset();
        await Harness.WaitUntil(() => a.Guest.TransportResets == 1, what: "event delivered");
        await bFromA.Completion.WaitAsync(TimeSpan.FromSeconds(5), Token);
        await bToA.Completion.WaitAsync(TimeSpan.FromSeconds(5), Token);
        Assert.True(bFromA.WasReset && bToA.WasReset && aToB.WasReset && aFromB.WasReset);

        // A stays online: new connections work at once.
        var (x, y, _, _) = await ConnectBothWays(a, b, 5801);
        await SiblingEchoTests.Echo(x, y, 50_000, 4);
    }

    [Fact(Timeout = 30_000)]
    public async Task PeerDeviceDisposedLeavesTheMap()
    {
        using var harness = new SiblingHarness();
        SiblingVm a = harness.Add(3);
        SiblingVm b = harness.Add(4);
        var (aToB, _, _, aFromB) = await ConnectBothWays(a, b, 5900);
        b.Dispose();
        await aToB.Completion.WaitAsync(TimeSpan.FromSeconds(5), Token);
        await aFromB.Completion.WaitAsync(TimeSpan.FromSeconds(5), Token);
        Assert.True(aToB.WasReset && aFromB.WasReset);
        Assert.False(harness.Map.Contains(4));
        Assert.False(harness.Map.CanReach(3, 4));
        await Assert.ThrowsAsync<GuestSocketException>(() => a.Guest.ConnectToAsync(4, 5900, cancellationToken: Token));
        Assert.Equal(1, a.Siblings.Unreachable);

        // A new device may take the CID: it is a new member with new routes.
        SiblingVm b2 = harness.Add(4);
        var (x, y, _, _) = await ConnectBothWays(a, b2, 5901);
        await SiblingEchoTests.Echo(x, y, 50_000, 5);
    }

    [Fact(Timeout = 60_000)]
    public async Task RepeatedKillsDuringTrafficBothWaysLeaveNothingBehind()
    {
        using var harness = new SiblingHarness();
        SiblingVm a = harness.Add(3);
        SiblingVm b = harness.Add(4);
        for (int round = 0; round < 5; round++)
        {
            uint port = (uint)(6000 + round);
            using GuestListener atA = a.Guest.Listen(port);
            using GuestListener atB = b.Guest.Listen(port);
            var sockets = new List<(SiblingVm Owner, GuestSocket Socket)>();
            for (int i = 0; i < 4; i++)
            {
                sockets.Add((a, await a.Guest.ConnectToAsync(4, port, cancellationToken: Token)));
                sockets.Add((b, await atB.AcceptAsync(Token)));
                sockets.Add((b, await b.Guest.ConnectToAsync(3, port, cancellationToken: Token)));
                sockets.Add((a, await atA.AcceptAsync(Token)));
            }

            // Everyone floods everyone; nobody reads, so routes and credit fill up; then one side dies.
            long aSent = a.Siblings.BytesSent, bSent = b.Siblings.BytesSent;
            Task[] floods = [.. sockets.Select(entry => entry.Socket.SendAsync(new byte[4 * 1024 * 1024], Token))];
            await Harness.WaitUntil(() => a.Siblings.BytesSent > aSent && b.Siblings.BytesSent > bSent, what: "traffic flowing both ways before the kill");
            SiblingVm victim = round % 2 == 0 ? b : a;
            SiblingVm survivor = victim == b ? a : b;
            victim.Kill();

            // The survivor's sockets are all reset (the victim's died with its guest).
            for (int i = 0; i < sockets.Count; i++)
            {
                if (sockets[i].Owner == survivor)
                {
                    await sockets[i].Socket.Completion.WaitAsync(TimeSpan.FromSeconds(5), Token);
                    Assert.True(sockets[i].Socket.WasReset);
                    await Assert.ThrowsAnyAsync<GuestSocketException>(() => floods[i]);
                }
            }

            await Harness.WaitUntil(() => survivor.Device.SiblingConnectionCount == 0 && survivor.Siblings.QueuedBytes == 0, what: "survivor clean");
            victim.Boot();
            Assert.Equal(0, victim.Device.SiblingConnectionCount);
        }

        using GuestListener last = b.Guest.Listen(6100);
        GuestSocket x = await a.Guest.ConnectToAsync(4, 6100, cancellationToken: Token);
        await SiblingEchoTests.Echo(x, await last.AcceptAsync(Token), 100_000, 6);
    }

    [Fact]
    public void DuplicateCidInOneMapIsRefused()
    {
        var map = new VsockCidMap();
        using var first = new VsockDevice(new VsockDeviceOptions { GuestCid = 9, Siblings = map }, new Backends.InProcess.InProcessBackend(), new SwitchableNotifier());
        Assert.Throws<InvalidOperationException>(() => new VsockDevice(new VsockDeviceOptions { GuestCid = 9, Siblings = map }, new Backends.InProcess.InProcessBackend(), new SwitchableNotifier()));
        Assert.Equal([9UL], map.Cids);
        Assert.Throws<ArgumentOutOfRangeException>(() => new VsockDevice(new VsockDeviceOptions { GuestCid = 10, Siblings = map, SiblingGroups = [] }, new Backends.InProcess.InProcessBackend(), new SwitchableNotifier()));
    }
}
