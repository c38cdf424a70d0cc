using Virtio.Vsock.Device.Backends.InProcess;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests;

public sealed class DeviceModelTests
{
    private sealed class NullNotifier : IVsockDeviceNotifier
    {
        public void NotifyQueue(int queueIndex)
        {
        }
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(1UL)]
    [InlineData(2UL)]
    [InlineData(0xffff_ffffUL)]
    [InlineData(0xffff_ffff_ffff_ffffUL)]
    [InlineData(0x1_0000_0000UL)]
    public void ReservedGuestCidsAreRejected(ulong cid)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new VsockDevice(new VsockDeviceOptions { GuestCid = cid }, new InProcessBackend(), new NullNotifier()));
    }

    [Fact]
    public void ConfigSpaceHoldsTheGuestCidAndFeaturesAreMasked()
    {
        using var device = new VsockDevice(new VsockDeviceOptions { GuestCid = 0x1234 }, new InProcessBackend(), new NullNotifier());
        Assert.Equal(19u, VsockDevice.DeviceId);
        Span<byte> config = stackalloc byte[12];
        device.ReadConfig(0, config);
        Assert.Equal(0x1234UL, BitConverter.ToUInt64(config));
        Assert.Equal(0u, BitConverter.ToUInt32(config[8..]));
        device.ReadConfig(4, config[..4]);
        Assert.Equal(0u, BitConverter.ToUInt32(config));

        ulong offered = VsockDevice.OfferedFeatures;
        Assert.NotEqual(0UL, offered & VsockFeatures.Version1);
        Assert.NotEqual(0UL, offered & VsockFeatures.Stream);
        Assert.NotEqual(0UL, offered & VsockFeatures.SeqPacket);
        Assert.NotEqual(0UL, offered & VsockFeatures.NoImpliedStream);
        Assert.NotEqual(0UL, offered & VsockFeatures.EventIndex);
        Assert.NotEqual(0UL, offered & VsockFeatures.IndirectDescriptors);
        ulong accepted = device.SetFeatures(ulong.MaxValue);
        Assert.Equal(offered, accepted);
    }

    [Fact]
    public async Task IdleDeviceLoopSleeps()
    {
        using var harness = new Harness();
        using var listener = harness.Backend.Listen(1);
        var guest = await harness.Guest.ConnectAsync(1, cancellationToken: TestContext.Current.CancellationToken);
        // Settle: the connection set-up's last kicks and turns (the guest refilling RX buffers) die out. A device that
        // keeps waking never settles and fails here, after the deadline.
        await Harness.WaitUntil(() => harness.Guest.OutstandingTxChains == 0, what: "guest TX chains returned");
        await Harness.WaitQuiet(() => harness.Metrics.LoopTurns + harness.Metrics.Kicks, TimeSpan.FromMilliseconds(200), "loop turns + kicks after connect");
        long turns = harness.Metrics.LoopTurns;
        long kicks = harness.Metrics.Kicks;

        // An open, idle connection: no wake-ups at all (no polling, no timers) over a measuring window. The verdict is
        // the counters: a slow machine cannot make them grow.
        await Harness.AssertUnchangedFor(() => harness.Metrics.LoopTurns, turns, TimeSpan.FromMilliseconds(500), "loop turns while idle");
        Assert.Equal(kicks, harness.Metrics.Kicks);
        GC.KeepAlive(guest);
    }

    [Fact]
    public void StopQueueReturnsNextAvailAndStartResumes()
    {
        using var harness = new Harness();
        ushort rxNext = harness.Device.StopQueue(VsockQueueIndex.Rx);
        ushort txNext = harness.Device.StopQueue(VsockQueueIndex.Tx);
        Assert.Equal(0, txNext);
        Assert.Equal(0, rxNext);
    }
}
