using Virtio.Vsock.Device.Backends.InProcess;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests;

/// <summary>Large transfers with checksums, many concurrent connections.</summary>
public sealed class BulkTests
{
    private const long Size = 256L * 1024 * 1024;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Transfer256MiBEachWayWithCrc()
    {
        using var harness = new Harness(new VsockDeviceOptions { BufferSize = 256 * 1024 });
        using VsockListener listener = harness.Backend.Listen(300);
        GuestSocket guest = await harness.Guest.ConnectAsync(300, cancellationToken: Token);
        VsockStream host = await listener.AcceptAsync(Token);

        Task<uint> guestSends = Helpers.SendPattern(m => guest.SendAsync(m, Token), Size, 11);
        Task<uint> hostSends = Helpers.SendPattern(m => host.WriteAsync(m, Token).AsTask(), Size, 12);
        Task<(long, uint)> hostReceives = Helpers.ReceiveAndHash(m => host.ReadAsync(m, Token).AsTask());
        Task<(long, uint)> guestReceives = Helpers.ReceiveAndHash(m => guest.ReceiveAsync(m, Token));

        uint guestCrc = await guestSends;
        guest.Shutdown(ShutdownFlags.Send);
        uint hostCrc = await hostSends;
        host.CompleteWrites();
        (long hostCount, uint hostReceivedCrc) = await hostReceives;
        (long guestCount, uint guestReceivedCrc) = await guestReceives;
        Assert.Equal(Size, hostCount);
        Assert.Equal(guestCrc, hostReceivedCrc);
        Assert.Equal(Size, guestCount);
        Assert.Equal(hostCrc, guestReceivedCrc);
        Assert.Equal(0, guest.CreditViolations);
        Assert.Equal(0, harness.Metrics.CreditViolations);
        Assert.Equal(0, harness.Guest.MalformedRxPackets);
    }

    [Fact]
    public async Task ThousandConcurrentConnectionsEachMovingData()
    {
        const int Count = 1000;
        using var harness = new Harness(new VsockDeviceOptions { MaxConnections = 1100 }, new GuestSimulatorOptions { SendBufferSize = 16 * 1024 }, hostBufferSize: 8 * 1024);
        using VsockListener listener = harness.Backend.Listen(301, backlog: Count);
        Task server = Task.Run(async () =>
        {
            var handlers = new List<Task>();
            for (int i = 0; i < Count; i++)
            {
                VsockStream stream = await listener.AcceptAsync(Token);
                handlers.Add(Task.Run(async () =>
                {
                    await using (stream)
                    {
                        byte[] buffer = new byte[4096];
                        int n;
                        while ((n = await stream.ReadAsync(buffer, Token)) > 0)
                        {
                            await stream.WriteAsync(buffer.AsMemory(0, n), Token);
                        }
                    }
                }, Token));
            }

            await Task.WhenAll(handlers);
        }, Token);

        var sockets = await Task.WhenAll(Enumerable.Range(0, Count).Select(_ => harness.Guest.ConnectAsync(301, cancellationToken: Token)));
        Assert.Equal(Count, harness.Device.ConnectionCount);
        await Task.WhenAll(sockets.Select(async (socket, i) =>
        {
            byte[] data = Helpers.Pattern(10_000 + i, i);
            Task send = socket.SendAsync(data, Token);
            byte[] echoed = await Helpers.ReadExactly(socket, data.Length, Token);
            await send;
            Assert.Equal(data, echoed);
            await socket.CloseAsync();
            Assert.False(socket.WasReset);
        }));
        await server.WaitAsync(Token);
        await Harness.WaitUntil(() => harness.Device.ConnectionCount == 0, 10000, "all closed");
        Assert.Equal(Count, harness.Metrics.ConnectionsOpened);
        Assert.Equal(0, harness.Metrics.ConnectionsReset);
    }
}
