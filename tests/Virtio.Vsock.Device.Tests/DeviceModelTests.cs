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
    public void IdleDeviceThreadSleeps()
    {
        using var harness = new Harness();
        long kicks = harness.Metrics.Kicks;
        TimeSpan before = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
        Thread.Sleep(300);
        TimeSpan after = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
        // Both the device loop and the simulator are idle: well under one core's worth of CPU.
        Assert.True((after - before).TotalMilliseconds < 150, $"CPU used while idle: {(after - before).TotalMilliseconds} ms");
        Assert.Equal(kicks, harness.Metrics.Kicks);
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
