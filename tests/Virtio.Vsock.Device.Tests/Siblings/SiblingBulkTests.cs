using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.Siblings;

/// <summary>Large transfers between two guests, both ways at once, checked with CRC-32.</summary>
public sealed class SiblingBulkTests
{
    private const long Size = 32L * 1024 * 1024;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory(Timeout = 120_000)]
    [InlineData(GuestBufferLayout.Linear)]
    [InlineData(GuestBufferLayout.Scattered)]
    public async Task Transfer32MiBEachWayWithCrc(GuestBufferLayout layout)
    {
        using var harness = new SiblingHarness();
        SiblingVm a = harness.Add(3, guestOptions: new GuestSimulatorOptions { TxLayout = layout });
        SiblingVm b = harness.Add(4, guestOptions: new GuestSimulatorOptions { RxLayout = GuestBufferLayout.HeaderAndData });
        using GuestListener listener = b.Guest.Listen(5200);
        GuestSocket x = await a.Guest.ConnectToAsync(4, 5200, cancellationToken: Token);
        GuestSocket y = await listener.AcceptAsync(Token);

        Task<uint> aSends = Helpers.SendPattern(m => x.SendAsync(m, Token), Size, 21);
        Task<uint> bSends = Helpers.SendPattern(m => y.SendAsync(m, Token), Size, 22);
        Task<(long, uint)> bReceives = Helpers.ReceiveAndHash(m => y.ReceiveAsync(m, Token));
        Task<(long, uint)> aReceives = Helpers.ReceiveAndHash(m => x.ReceiveAsync(m, Token));

        uint aCrc = await aSends;
        x.Shutdown(ShutdownFlags.Send);
        uint bCrc = await bSends;
        y.Shutdown(ShutdownFlags.Send);
        (long bCount, uint bReceivedCrc) = await bReceives;
        (long aCount, uint aReceivedCrc) = await aReceives;
        Assert.Equal(Size, bCount);
        Assert.Equal(aCrc, bReceivedCrc);
        Assert.Equal(Size, aCount);
        Assert.Equal(bCrc, aReceivedCrc);

        Assert.Equal(0, x.CreditViolations);
        Assert.Equal(0, y.CreditViolations);
        foreach (SiblingVm vm in new[] { a, b })
        {
            Assert.Equal(0, vm.Guest.MalformedRxPackets);
            Assert.Equal(0, vm.Siblings.RouteFull);
            Assert.Equal(0, vm.Siblings.CreditViolations);
            Assert.Equal(0, vm.Siblings.ProtocolErrors);
            Assert.True(vm.Siblings.BytesSent >= Size);

            // A route holds at most what the receiving guest's credit allows for this one connection.
            Assert.InRange(vm.Siblings.PeakQueuedBytes, 1, 256 * 1024);
        }

        // Both halves shut: the devices' table entries go when the guests finish with RST.
        await x.CloseAsync();
        await y.CloseAsync();
        await Harness.WaitUntil(() => a.Device.SiblingConnectionCount == 0 && b.Device.SiblingConnectionCount == 0, what: "closed");
    }
}
