using Virtio.Vsock.Device.Backends.InProcess;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.Diagnostics;

/// <summary>
/// The snapshot's per-queue view (<see cref="VsockQueueInfo"/>): the indices the device and the driver are at,
/// the driver's EVENT_IDX request, and how many publishes were notified or suppressed.
/// </summary>
public sealed class QueueSnapshotTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task After_traffic_the_queues_show_every_chain_taken_and_returned_and_the_notifications(bool eventIdx)
    {
        using var harness = new Harness(guestOptions: new GuestSimulatorOptions { EventIdx = eventIdx });
        CancellationToken token = Harness.Timeout();
        using VsockListener listener = harness.Backend.Listen(1234);
        Task server = Task.Run(async () =>
        {
            await using VsockStream stream = await listener.AcceptAsync(token);
            byte[] buffer = new byte[8192];
            while (await stream.ReadAsync(buffer, token) > 0)
            {
            }
        }, token);

        GuestSocket socket = await harness.Guest.ConnectAsync(1234, cancellationToken: token);
        await socket.SendAsync(Helpers.Pattern(200_000, 3), token);
        socket.Shutdown(ShutdownFlags.Send);
        await server.WaitAsync(token);
        await socket.CloseAsync();
        await Harness.WaitUntil(() => harness.Guest.OutstandingTxChains == 0, what: "every TX chain returned to the guest");

        VsockDeviceSnapshot snapshot = await harness.Device.SnapshotAsync().WaitAsync(token);
        Assert.Equal(["rx", "tx", "event"], snapshot.Queues.Select(q => q.Name));
        Assert.Equal([0, 1, 2], snapshot.Queues.Select(q => q.Index));
        VsockQueueInfo tx = snapshot.Queues[1];
        Assert.True(tx.Running);
        Assert.False(tx.Broken);
        Assert.Equal(tx.AvailIndex, tx.NextAvail);
        Assert.Equal(tx.NextAvail, tx.UsedIndex);
        Assert.True(tx.UsedIndex >= 5, $"only {tx.UsedIndex} TX chains: a REQUEST and 200,000 bytes take at least five");
        Assert.True(tx.Notifications > 0, "no TX notification");
        Assert.Equal(eventIdx, tx.UsedEvent is not null);

        VsockQueueInfo rx = snapshot.Queues[0];
        Assert.True(rx.Notifications > 0, "no RX notification (the connection's replies)");
        Assert.Equal(snapshot.RxBuffersAvailable, (ushort)(rx.AvailIndex!.Value - rx.NextAvail));
        Assert.Equal(0, snapshot.TxChainsWaiting);
    }

    [Fact]
    public async Task A_queue_the_driver_has_not_started_shows_no_guest_indices()
    {
        using var harness = new Harness();
        harness.Device.StopQueue(VsockQueueIndex.Tx);
        VsockDeviceSnapshot snapshot = await harness.Device.SnapshotAsync().WaitAsync(Harness.Timeout());
        VsockQueueInfo tx = snapshot.Queues[VsockQueueIndex.Tx];
        Assert.False(tx.Running);
        Assert.Null(tx.AvailIndex);
        Assert.Null(tx.UsedEvent);
        Assert.True(snapshot.Queues[VsockQueueIndex.Rx].Running);
    }
}
