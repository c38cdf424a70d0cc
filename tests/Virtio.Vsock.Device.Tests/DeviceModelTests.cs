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
        await Task.Delay(50, TestContext.Current.CancellationToken);
        long turns = harness.Metrics.LoopTurns;
        long kicks = harness.Metrics.Kicks;
        await Task.Delay(400, TestContext.Current.CancellationToken);
        // An open, idle connection: no wake-ups at all (no polling, no timers).
        Assert.Equal(turns, harness.Metrics.LoopTurns);
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
