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
/// interrupt. To lose a notification for certain, the driver holds its completions and the notifier drops every
/// notification until the device has returned the buffers; then the driver resumes without being woken.
/// </remarks>
public sealed class NotificationWatchTests
{
    [Theory]
    [InlineData(VsockQueueIndex.Tx)]
    [InlineData(VsockQueueIndex.Rx)]
    public async Task A_lost_notification_is_sent_again_and_the_driver_takes_its_buffers(int lostQueue)
    {
        var guest = new GuestSimulator(new GuestSimulatorOptions { EventIdx = true });
        var notifier = new DroppingNotifier(guest);
        var backend = new InProcessBackend();
        using var listener = backend.Listen(1234);
        var device = new VsockDevice(new VsockDeviceOptions(), backend, notifier);
        guest.Attach(device);
        using var simulator = guest;
        using var deviceScope = device;

        // A connection, so that the host can send the guest something (RX); TX uses an RST for no connection, which
        // the device answers with nothing, so only the TX notification can wake the driver.
        GuestSocket socket = await guest.ConnectAsync(1234, cancellationToken: Harness.Timeout(30));
        await using VsockStream host = await listener.AcceptAsync(Harness.Timeout(30));
        await Harness.WaitUntil(() => guest.OutstandingTxChains == 0, what: "the handshake's TX chains returned");
        ushort usedBefore = (await device.SnapshotAsync().WaitAsync(Harness.Timeout(30))).Queues[lostQueue].UsedIndex;

        guest.HoldCompletions();
        notifier.Dropping = true;
        if (lostQueue == VsockQueueIndex.Tx)
        {
            guest.SendRaw(UnansweredRst());
        }
        else
        {
            await host.WriteAsync(new byte[] { 7, 8, 9 }, Harness.Timeout(30));
        }

        await Harness.WaitUntil(
            () => device.SnapshotAsync().GetAwaiter().GetResult().Queues[lostQueue].UsedIndex != usedBefore,
            what: "the device returned the buffer");
        int held = guest.OutstandingTxChains; // under the driver's lock: it has finished looking at its rings and sleeps
        Assert.Equal(lostQueue == VsockQueueIndex.Tx ? 1 : 0, held);
        Assert.True(notifier.Dropped >= 1, "no notification was dropped");
        notifier.Dropping = false;
        guest.ResumeOnNextNotification();

        if (lostQueue == VsockQueueIndex.Tx)
        {
            await Harness.WaitUntil(() => guest.OutstandingTxChains == 0, what: "the driver took the RST's TX chain back");
        }
        else
        {
            Assert.Equal(new byte[] { 7, 8, 9 }, await Helpers.ReadExactly(socket, 3, Harness.Timeout(30)));
        }

        Assert.True(device.Metrics.RepeatedNotifications >= 1, "no notification was sent again");
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
        var device = new VsockDevice(new VsockDeviceOptions(), new InProcessBackend(), guest);
        guest.Attach(device);
        using var simulator = guest;
        using var deviceScope = device;

        guest.HoldCompletions();
        guest.SendRaw(UnansweredRst());
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

    /// <summary>Passes notifications to the simulator, or drops them all while <see cref="Dropping"/>.</summary>
    private sealed class DroppingNotifier(IVsockDeviceNotifier inner) : IVsockDeviceNotifier
    {
        private volatile bool _dropping;
        private int _dropped;

        public bool Dropping
        {
            get => _dropping;
            set => _dropping = value;
        }

        public int Dropped => Volatile.Read(ref _dropped);

        public void NotifyQueue(int queueIndex)
        {
            if (_dropping)
            {
                Interlocked.Increment(ref _dropped);
                return;
            }

            inner.NotifyQueue(queueIndex);
        }
    }
}
