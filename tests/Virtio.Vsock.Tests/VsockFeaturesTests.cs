namespace Virtio.Vsock.Tests;

public sealed class VsockFeaturesTests
{
    // What Linux guests negotiate with a device offering STREAM | SEQPACKET | NO_IMPLIED_STREAM:
    // their driver knows only SEQPACKET (QEMU 7.2's vhost-user-vsock passes SET_FEATURES 0x140000002).
    private const ulong LinuxGuest = VsockFeatures.Version1 | VsockFeatures.SeqPacket;

    [Theory]
    [InlineData(0UL, true)]
    [InlineData(VsockFeatures.Stream, true)]
    [InlineData(VsockFeatures.SeqPacket, true)]
    [InlineData(LinuxGuest, true)]
    [InlineData(VsockFeatures.Stream | VsockFeatures.SeqPacket | VsockFeatures.NoImpliedStream, true)]
    [InlineData(VsockFeatures.SeqPacket | VsockFeatures.NoImpliedStream, false)]
    [InlineData(VsockFeatures.NoImpliedStream, false)]
    public void Stream_is_implied_unless_NO_IMPLIED_STREAM_is_negotiated(ulong features, bool stream)
    {
        Assert.Equal(stream, VsockFeatures.StreamEnabled(features));
    }

    [Fact]
    public void Linux_guest_features_enable_both_socket_types()
    {
        Assert.True(VsockFeatures.StreamEnabled(LinuxGuest));
        Assert.True(VsockFeatures.SeqPacketEnabled(LinuxGuest));
    }
}
