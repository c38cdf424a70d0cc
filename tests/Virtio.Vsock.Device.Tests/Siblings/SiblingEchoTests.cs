using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.Siblings;

/// <summary>Guests of one group reach each other by CID, both ways, as if from the sender's CID.</summary>
public sealed class SiblingEchoTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    internal static async Task Echo(GuestSocket client, GuestSocket server, int length, int seed)
    {
        byte[] data = Helpers.Pattern(length, seed);
        Task send = client.SendAsync(data, Token);
        byte[] atServer = await Helpers.ReadExactly(server, length, Token);
        await send;
        Assert.Equal(data, atServer);
        Task reply = server.SendAsync(atServer, Token);
        Assert.Equal(data, await Helpers.ReadExactly(client, length, Token));
        await reply;
    }

    [Fact(Timeout = 30_000)]
    public async Task EchoBothWaysThenOrderlyClose()
    {
        using var harness = new SiblingHarness();
        SiblingVm a = harness.Add(3);
        SiblingVm b = harness.Add(4);
        using GuestListener atB = b.Guest.Listen(5000);
        using GuestListener atA = a.Guest.Listen(6000);

        GuestSocket aToB = await a.Guest.ConnectToAsync(4, 5000, cancellationToken: Token);
        GuestSocket bFromA = await atB.AcceptAsync(Token);
        Assert.Equal(3UL, bFromA.PeerCid);
        Assert.Equal(aToB.LocalPort, bFromA.PeerPort);
        await Echo(aToB, bFromA, 300_000, 1);

        GuestSocket bToA = await b.Guest.ConnectToAsync(3, 6000, cancellationToken: Token);
        GuestSocket aFromB = await atA.AcceptAsync(Token);
        Assert.Equal(4UL, aFromB.PeerCid);
        await Echo(bToA, aFromB, 123_457, 2);

        Assert.Equal(2, a.Device.SiblingConnectionCount);
        Assert.Equal(2, b.Device.SiblingConnectionCount);
        Assert.Equal(0, a.Device.ConnectionCount);
        Assert.Equal(0, b.Device.ConnectionCount);

        // Orderly close both ways: SHUTDOWN(both), the peer drains and answers RST.
        Task closeA = aToB.CloseAsync();
        Assert.Empty(await Helpers.ReadAll(bFromA, Token));
        await closeA;
        await bToA.CloseAsync();
        Assert.False(aToB.WasReset);
        Assert.False(bToA.WasReset);
        await bFromA.Completion.WaitAsync(TimeSpan.FromSeconds(5), Token);
        await aFromB.Completion.WaitAsync(TimeSpan.FromSeconds(5), Token);
        await Harness.WaitUntil(() => a.Device.SiblingConnectionCount == 0 && b.Device.SiblingConnectionCount == 0, what: "sibling connections gone");

        foreach (SiblingVm vm in new[] { a, b })
        {
            Assert.Equal(0, vm.Guest.MalformedRxPackets);
            Assert.Equal(0, vm.Siblings.CreditViolations);
            Assert.Equal(0, vm.Siblings.ProtocolErrors);
            Assert.Equal(0, vm.Siblings.RouteFull);
            Assert.True(vm.Siblings.PacketsSent > 0);
            Assert.True(vm.Siblings.PacketsDelivered > 0);
            Assert.Equal(0, vm.Siblings.QueuedBytes);
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task HostTrafficStillWorksNextToSiblings()
    {
        using var harness = new SiblingHarness();
        SiblingVm a = harness.Add(3);
        SiblingVm b = harness.Add(4);
        using Backends.InProcess.VsockListener host = a.Backend.Listen(7000);
        using GuestListener atB = b.Guest.Listen(5001);

        GuestSocket toHost = await a.Guest.ConnectAsync(7000, cancellationToken: Token);
        Backends.InProcess.VsockStream hostSide = await host.AcceptAsync(Token);
        GuestSocket toB = await a.Guest.ConnectToAsync(4, 5001, cancellationToken: Token);
        GuestSocket fromA = await atB.AcceptAsync(Token);

        byte[] forHost = Helpers.Pattern(500_000, 3);
        byte[] forB = Helpers.Pattern(500_000, 4);
        Task s1 = toHost.SendAsync(forHost, Token);
        Task s2 = toB.SendAsync(forB, Token);
        Task<byte[]> r1 = Helpers.ReadExactly(hostSide, forHost.Length, Token);
        Task<byte[]> r2 = Helpers.ReadExactly(fromA, forB.Length, Token);
        await Task.WhenAll(s1, s2, r1, r2);
        Assert.Equal(forHost, await r1);
        Assert.Equal(forB, await r2);
        Assert.Equal(1, a.Device.ConnectionCount);
        Assert.Equal(1, a.Device.SiblingConnectionCount);
    }

    [Fact(Timeout = 90_000)]
    public async Task ManyConnectionsAmongThreeVmsAllAtOnce()
    {
        const int PerPair = 10;
        using var harness = new SiblingHarness();
        SiblingVm[] vms = [harness.Add(3), harness.Add(4), harness.Add(5)];
        var listeners = vms.Select(vm => vm.Guest.Listen(8000)).ToArray();
        try
        {
            var servers = listeners.Select(listener => Task.Run(async () =>
            {
                var handlers = new List<Task>();
                for (int i = 0; i < PerPair * 2; i++)
                {
                    GuestSocket socket = await listener.AcceptAsync(Token);
                    handlers.Add(Task.Run(async () =>
                    {
                        var buffer = new byte[65536];
                        int n;
                        while ((n = await socket.ReceiveAsync(buffer, Token)) > 0)
                        {
                            await socket.SendAsync(buffer.AsMemory(0, n), Token);
                        }

                        await socket.CloseAsync();
                    }, Token));
                }

                await Task.WhenAll(handlers);
            }, Token)).ToArray();

            var clients = new List<Task>();
            foreach (SiblingVm from in vms)
            {
                foreach (SiblingVm to in vms.Where(vm => vm != from))
                {
                    for (int i = 0; i < PerPair; i++)
                    {
                        int seed = (int)(from.Cid * 1000 + to.Cid * 100) + i;
                        clients.Add(Task.Run(async () =>
                        {
                            GuestSocket socket = await from.Guest.ConnectToAsync(to.Cid, 8000, cancellationToken: Token);
                            byte[] data = Helpers.Pattern(200_000 + seed % 1000, seed);
                            Task send = socket.SendAsync(data, Token);
                            byte[] echoed = await Helpers.ReadExactly(socket, data.Length, Token);
                            await send;
                            Assert.Equal(data, echoed);
                            await socket.CloseAsync();
                            Assert.False(socket.WasReset);
                        }, Token));
                    }
                }
            }

            await Task.WhenAll(clients).WaitAsync(TimeSpan.FromSeconds(60), Token);
            await Task.WhenAll(servers).WaitAsync(TimeSpan.FromSeconds(30), Token);
            await Harness.WaitUntil(() => vms.All(vm => vm.Device.SiblingConnectionCount == 0), what: "all sibling connections closed");
            Assert.All(vms, vm => Assert.Equal(0, vm.Siblings.RouteFull + vm.Siblings.CreditViolations + vm.Siblings.ProtocolErrors));
        }
        finally
        {
            foreach (GuestListener listener in listeners)
            {
                listener.Dispose();
            }
        }
    }
}
