using Virtio.Vsock.Device.Backends.InProcess;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.Reliability;

/// <summary>
/// A used-buffer notification lost between the device and the driver (a call descriptor swapped while it was in
/// flight, an interrupt masked around it) is sent again: with EVENT_IDX the driver's <c>used_event</c> shows it never
/// took the buffers the device returned.
/// </summary>
/// <remarks>
/// The simulator's driver thread sleeps until a notification or its own send wakes it, as a driver waits for its
/// interrupt; but right after its own send it looks at the rings once more, and when the device was quick it takes
/// the buffers without any notification. Such an attempt proves nothing and is made again.
/// </remarks>
public sealed class NotificationWatchTests
{
    private const int Attempts = 10;

    [Theory]
    [InlineData(VsockQueueIndex.Tx)]
    [InlineData(VsockQueueIndex.Rx)]
    public async Task A_lost_notification_is_sent_again_and_the_driver_takes_its_buffers(int lostQueue)
    {
        var guest = new GuestSimulator(new GuestSimulatorOptions { EventIdx = true });
        var notifier = new LosingNotifier(guest);
        var backend = new InProcessBackend();
        using var listener = backend.Listen(1234);
        var device = new VsockDevice(new VsockDeviceOptions(), backend, notifier);
        guest.Attach(device);
        using var _ = guest;
        using var __ = device;

        // A connection, so that the host can send the guest something (RX); TX uses an RST for no connection, which
        // the device answers with nothing, so only the TX notification can wake the driver.
        GuestSocket socket = await guest.ConnectAsync(1234, cancellationToken: Harness.Timeout(30));
        await using VsockStream host = await listener.AcceptAsync(Harness.Timeout(30));
        await Harness.WaitUntil(() => guest.OutstandingTxChains == 0, what: "the handshake's TX chains returned");

        bool repeatedNeeded = false;
        for (int attempt = 0; attempt < Attempts && !repeatedNeeded; attempt++)
        {
            long repeatedBefore = device.Metrics.RepeatedNotifications;
            int lostBefore = notifier.Lost;
            notifier.LoseNext(lostQueue);
            if (lostQueue == VsockQueueIndex.Tx)
            {
                guest.SendRaw(UnansweredRst());
                await Harness.WaitUntil(() => notifier.Lost > lostBefore, what: "the TX notification was lost");
                await Harness.WaitUntil(() => guest.OutstandingTxChains == 0, what: "the driver took the RST's TX chain back");
            }
            else
            {
                byte[] data = [7, 8, (byte)attempt];
                await host.WriteAsync(data, Harness.Timeout(30));
                await Harness.WaitUntil(() => notifier.Lost > lostBefore, what: "the RX notification was lost");
                Assert.Equal(data, await Helpers.ReadExactly(socket, 3, Harness.Timeout(30)));
            }

            repeatedNeeded = device.Metrics.RepeatedNotifications > repeatedBefore;
        }

        Assert.True(repeatedNeeded, $"in {Attempts} attempts the driver never needed the repeated notification");
        VsockDeviceSnapshot snapshot = await device.SnapshotAsync().WaitAsync(Harness.Timeout(30));
        VsockQueueInfo queue = snapshot.Queues[lostQueue];
        Assert.True(queue.Repeated >= 1, $"queue {lostQueue} shows no repeated notification");
        Assert.Equal(queue.UsedIndex, queue.UsedEvent);

        // Once the driver has caught up the watch stops: a watch that kept running would wake the loop every second,
        // so three quiet seconds show it stopped.
        long repeated = device.Metrics.RepeatedNotifications;
        await Harness.WaitQuiet(() => device.Metrics.LoopTurns, TimeSpan.FromSeconds(3), "loop turns after the driver caught up");
        Assert.Equal(repeated, device.Metrics.RepeatedNotifications);
    }

    [Fact]
    public async Task A_driver_that_never_takes_its_buffers_is_notified_at_most_once_a_period()
    {
        var guest = new GuestSimulator(new GuestSimulatorOptions { EventIdx = true });
        var notifier = new LosingNotifier(guest) { LoseAll = true };
        var device = new VsockDevice(new VsockDeviceOptions(), new InProcessBackend(), notifier);
        guest.Attach(device);
        using var _ = guest;
        using var __ = device;

        // Until one RST's chain stays with the device's used ring, untaken (the driver sleeps, no notification arrives).
        bool left = false;
        for (int attempt = 0; attempt < Attempts && !left; attempt++)
        {
            guest.SendRaw(UnansweredRst());
            int sent = attempt + 1;
            await Harness.WaitUntil(
                () => device.SnapshotAsync().GetAwaiter().GetResult().Queues[VsockQueueIndex.Tx].UsedIndex == sent,
                what: "the device returned the RST's chain");
            left = guest.OutstandingTxChains == 1; // taken under the driver's lock: it has finished looking
        }

        Assert.True(left, $"in {Attempts} attempts the driver always took the chain before sleeping");
        await Harness.WaitUntil(() => device.Metrics.RepeatedNotifications >= 2, what: "two repeated notifications");

        // The repeats are a watch period apart at the least; a loaded machine only stretches the gap.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long start = device.Metrics.RepeatedNotifications;
        await Harness.WaitUntil(() => device.Metrics.RepeatedNotifications >= start + 2, what: "two more repeats");
        Assert.True(clock.Elapsed >= VsockDevice.NotificationWatchPeriod, $"two repeats within {clock.Elapsed}");
        Assert.Equal(1, guest.OutstandingTxChains);
    }

    private static VsockHeader UnansweredRst() => new()
    {
        SrcCid = 3, DstCid = VsockCid.Host, SrcPort = 999, DstPort = 4321, Type = VsockType.Stream, Op = VsockOp.Rst,
    };

    /// <summary>Passes notifications to the simulator except the ones it is told to lose.</summary>
    private sealed class LosingNotifier(IVsockDeviceNotifier inner) : IVsockDeviceNotifier
    {
        private int _loseQueue = -1;
        private int _lost;

        public bool LoseAll { get; init; }

        public int Lost => Volatile.Read(ref _lost);

        public void LoseNext(int queueIndex) => Volatile.Write(ref _loseQueue, queueIndex);

        public void NotifyQueue(int queueIndex)
        {
            if (LoseAll || Interlocked.CompareExchange(ref _loseQueue, -1, queueIndex) == queueIndex)
            {
                Interlocked.Increment(ref _lost);
                return;
            }

            inner.NotifyQueue(queueIndex);
        }
    }
}
