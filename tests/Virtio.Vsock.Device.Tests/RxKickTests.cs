using Virtio.Vsock.Device.Backends.InProcess;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests;

/// <summary>
/// RX available-buffer notifications (kicks): the device asks for them only while host data waits for a buffer and
/// the ring is empty, as vhost-vsock does. A driver that refills RX after every packet it reads then costs no
/// notification (a VM exit under KVM) and no device wake-up; one whose ring ran dry is still heard.
/// </summary>
public sealed class RxKickTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Refilled_RX_buffers_are_not_announced_while_nothing_waits_for_them(bool eventIdx)
    {
        using var harness = new Harness(guestOptions: new GuestSimulatorOptions { EventIdx = eventIdx });
        using VsockListener listener = harness.Backend.Listen(300);
        GuestSocket guest = await harness.Guest.ConnectAsync(300, cancellationToken: Token);
        VsockStream host = await listener.AcceptAsync(Token);
        await harness.RoundTripSentinel(301, Token);
        int kicks = harness.Guest.KicksSent(VsockQueueIndex.Rx);

        // Fifty packets host to guest, each read (and its buffer put back) before the next: fifty refills.
        for (int i = 0; i < 50; i++)
        {
            await host.WriteAsync(new[] { (byte)i }, Token);
            Assert.Equal(new[] { (byte)i }, await Helpers.ReadExactly(guest, 1, Token));
        }

        await harness.RoundTripSentinel(302, Token);
        Assert.Equal(kicks, harness.Guest.KicksSent(VsockQueueIndex.Rx));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Host_data_that_ran_the_RX_ring_dry_asks_for_a_kick_and_the_refill_brings_it_through(bool eventIdx)
    {
        using var harness = new Harness(guestOptions: new GuestSimulatorOptions { EventIdx = eventIdx, QueueSize = 32 });
        using VsockListener listener = harness.Backend.Listen(310);
        GuestSocket guest = await harness.Guest.ConnectAsync(310, cancellationToken: Token);
        VsockStream host = await listener.AcceptAsync(Token);
        await harness.RoundTripSentinel(311, Token);

        // The driver stops taking RX buffers; the host sends one and a half times what the ring's 32 buffers of 4 KiB
        // hold (within the guest's 256 KiB credit, so only the buffers hold it back).
        harness.Guest.RxPaused = true;
        byte[] data = Helpers.Pattern(3 * 16 * 4096, 31);
        Task send = host.WriteAsync(data, Token).AsTask();
        await Harness.WaitUntil(
            () =>
            {
                VsockQueueInfo rx = harness.Device.SnapshotAsync().GetAwaiter().GetResult().Queues[VsockQueueIndex.Rx];
                return rx.AvailIndex == rx.NextAvail && harness.Device.Metrics.RxBytes >= 24 * 4096;
            },
            what: "the device took every RX buffer the driver had posted");
        int kicks = harness.Guest.KicksSent(VsockQueueIndex.Rx);

        // The driver takes its buffers again: its refill must be announced, or the rest of the data never comes.
        harness.Guest.RxPaused = false;
        Assert.Equal(data, await Helpers.ReadExactly(guest, data.Length, Token));
        await send;
        Assert.True(harness.Guest.KicksSent(VsockQueueIndex.Rx) > kicks, "the driver's refill was not kicked");

        // Nothing waits any more: refills go unannounced again.
        await harness.RoundTripSentinel(312, Token);
        kicks = harness.Guest.KicksSent(VsockQueueIndex.Rx);
        for (int i = 0; i < 20; i++)
        {
            await host.WriteAsync(new[] { (byte)i }, Token);
            Assert.Equal(new[] { (byte)i }, await Helpers.ReadExactly(guest, 1, Token));
        }

        await harness.RoundTripSentinel(313, Token);
        Assert.Equal(kicks, harness.Guest.KicksSent(VsockQueueIndex.Rx));
    }
}
