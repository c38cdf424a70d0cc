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
    public async Task A_driver_that_never_moves_is_notified_once_a_period_a_few_times_then_left_alone()
    {
        using var harness = new Harness(guestOptions: new GuestSimulatorOptions { EventIdx = true });
        (GuestSimulator guest, VsockDevice device) = (harness.Guest, harness.Device);

        guest.HoldCompletions();
        guest.SendRaw(UnansweredRst());

        // The repeats are a watch period apart at the least (a loaded machine only stretches the gaps): from the
        // first seen to the third there are two gaps, so at least one whole one.
        await Harness.WaitUntil(() => device.Metrics.RepeatedNotifications >= 1, what: "a repeated notification");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await Harness.WaitUntil(() => device.Metrics.RepeatedNotifications >= 3, what: "three repeats");
        Assert.True(clock.Elapsed >= VsockDevice.NotificationWatchPeriod, $"repeats 1 to 3 within {clock.Elapsed}");

        // Then the stall's repeats are spent: the watch stops (three quiet seconds of the loop) and the count stays.
        await Harness.WaitUntil(() => device.Metrics.RepeatedNotifications >= VsockDevice.MaxRepeatsPerStall, what: "every repeat of the stall");
        await Harness.WaitQuiet(() => device.Metrics.LoopTurns, TimeSpan.FromSeconds(3), "loop turns once the repeats are spent");
        Assert.Equal(VsockDevice.MaxRepeatsPerStall, device.Metrics.RepeatedNotifications);
        Assert.Equal(1, guest.OutstandingTxChains);
    }

    [Fact]
    public async Task A_driver_that_left_its_callbacks_disabled_and_stopped_is_woken_too()
    {
        using var harness = new Harness(guestOptions: new GuestSimulatorOptions { EventIdx = true });
        (GuestSimulator guest, VsockDevice device) = (harness.Guest, harness.Device);

        // One RST through first: the device's first notification after a queue starts is unconditional.
        guest.SendRaw(UnansweredRst());
        await Harness.WaitUntil(
            () => device.SnapshotAsync().GetAwaiter().GetResult().Queues[VsockQueueIndex.Tx].UsedIndex == 1 && guest.OutstandingTxChains == 0,
            what: "the first RST's chain returned and taken");
        long notifiedBefore = (await device.SnapshotAsync().WaitAsync(Harness.Timeout(30))).Queues[VsockQueueIndex.Tx].Notifications;

        // Linux's virtqueue_disable_cb parks used_event half a ring-index space away: the device's publish asks for
        // no notification. A chain too short for a header is returned with length 0 and answered with nothing.
        guest.HoldCompletions();
        guest.PostRawTxChain((driver, allocator) =>
        {
            driver.DisableInterrupts();
            driver.AddChain(Virtio.Queue.Testing.TestBuffer.DeviceReadable(allocator.Allocate(16), 16));
        });
        await Harness.WaitUntil(() => device.Metrics.TxInvalidChains == 1, what: "the device returned the chain");
        Assert.Equal(1, guest.OutstandingTxChains); // under the driver's lock: it has finished looking and sleeps
        VsockQueueInfo tx = (await device.SnapshotAsync().WaitAsync(Harness.Timeout(30))).Queues[VsockQueueIndex.Tx];
        Assert.Equal(notifiedBefore, tx.Notifications);
        Assert.True(tx.Suppressed >= 1, "the publish was not suppressed");
        guest.ResumeOnNextNotification();

        await Harness.WaitUntil(() => guest.OutstandingTxChains == 0, what: "the driver took the chain back");
        Assert.True(device.Metrics.RepeatedNotifications >= 1, "the driver was not woken by the watch");
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
