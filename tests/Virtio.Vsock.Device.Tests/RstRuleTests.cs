using Virtio.Vsock.Device.Backends.InProcess;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests;

/// <summary>Every RST rule of vsock.md, with raw guest packets.</summary>
public sealed class RstRuleTests
{
    private const uint GuestPort = 7000;

    private static VsockHeader Raw(VsockOp op, uint dstPort, VsockType type = VsockType.Stream, uint flags = 0, uint bufAlloc = 65536) => new()
    {
        SrcCid = 3,
        DstCid = VsockCid.Host,
        SrcPort = GuestPort,
        DstPort = dstPort,
        Type = type,
        Op = op,
        Flags = flags,
        BufAlloc = bufAlloc,
    };

    private static async Task<VsockHeader> ExpectRst(Harness harness, uint hostPort)
    {
        VsockHeader? rst = await harness.Guest.WaitRawAsync(h => h.Op == VsockOp.Rst && h.SrcPort == hostPort, TimeSpan.FromSeconds(5));
        Assert.NotNull(rst);
        Assert.Equal(GuestPort, rst.Value.DstPort);
        Assert.Equal(3UL, rst.Value.DstCid);
        Assert.Equal(VsockCid.Host, rst.Value.SrcCid);
        return rst.Value;
    }

    [Fact]
    public async Task RequestWithNoListenerGetsRstQuickly()
    {
        using var harness = new Harness();
        harness.Guest.ClaimRawPort(GuestPort);
        var started = DateTime.UtcNow;
        harness.Guest.SendRaw(Raw(VsockOp.Request, 1));
        await ExpectRst(harness, 1);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(1));
        await Harness.WaitUntil(() => harness.Device.ConnectionCount == 0);
    }

    [Fact]
    public async Task GuestConnectToClosedPortIsRefusedQuickly()
    {
        using var harness = new Harness();
        var started = DateTime.UtcNow;
        await Assert.ThrowsAsync<GuestSocketException>(() => harness.Guest.ConnectAsync(4242, cancellationToken: TestContext.Current.CancellationToken));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(1), "refusal must not wait for a timeout");
        Assert.Equal(1, harness.Metrics.ConnectionsRefused);
    }

    [Theory]
    [InlineData(VsockOp.Rw)]
    [InlineData(VsockOp.Shutdown)]
    [InlineData(VsockOp.CreditUpdate)]
    [InlineData(VsockOp.CreditRequest)]
    [InlineData(VsockOp.Response)]
    [InlineData(VsockOp.Invalid)]
    [InlineData((VsockOp)99)]
    public async Task PacketOfUnknownConnectionGetsRst(VsockOp op)
    {
        using var harness = new Harness();
        harness.Guest.ClaimRawPort(GuestPort);
        harness.Guest.SendRaw(Raw(op, 77), op == VsockOp.Rw ? new byte[10] : default);
        await ExpectRst(harness, 77);
    }

    [Fact]
    public async Task RstIsNeverAnsweredWithRst()
    {
        using var harness = new Harness();
        harness.Guest.ClaimRawPort(GuestPort);
        harness.Guest.SendRaw(Raw(VsockOp.Rst, 78));
        // A marker packet afterwards: its RST proves the first packet was processed.
        harness.Guest.SendRaw(Raw(VsockOp.Rw, 79));
        await ExpectRst(harness, 79);
        Assert.DoesNotContain(harness.Guest.RawReceived, h => h.SrcPort == 78);
        Assert.Equal(1, harness.Metrics.RstSent);
    }

    [Theory]
    [InlineData((VsockType)0)]
    [InlineData((VsockType)3)]
    [InlineData((VsockType)0xffff)]
    public async Task UnknownTypeGetsRst(VsockType type)
    {
        using var harness = new Harness();
        using VsockListener listener = harness.Backend.Listen(80);
        harness.Guest.ClaimRawPort(GuestPort);
        harness.Guest.SendRaw(Raw(VsockOp.Request, 80, type));
        VsockHeader rst = await ExpectRst(harness, 80);
        Assert.Equal(type, rst.Type);
        Assert.Equal(0, harness.Device.ConnectionCount);
    }

    [Fact]
    public async Task SeqPacketWithoutTheFeatureGetsRst()
    {
        using var harness = new Harness(guestOptions: new GuestSimulatorOptions { SeqPacket = false });
        using VsockListener listener = harness.Backend.Listen(81, VsockType.SeqPacket);
        harness.Guest.ClaimRawPort(GuestPort);
        harness.Guest.SendRaw(Raw(VsockOp.Request, 81, VsockType.SeqPacket));
        await ExpectRst(harness, 81);
    }

    [Fact]
    public async Task WrongSourceCidIsDroppedNotAnswered()
    {
        using var harness = new Harness();
        harness.Guest.ClaimRawPort(GuestPort);
        VsockHeader header = Raw(VsockOp.Request, 82);
        header.SrcCid = 99;
        harness.Guest.SendRaw(header);
        harness.Guest.SendRaw(Raw(VsockOp.Rw, 83));
        await ExpectRst(harness, 83);
        Assert.DoesNotContain(harness.Guest.RawReceived, h => h.SrcPort == 82);
        Assert.Equal(1, harness.Metrics.DroppedPackets);
    }

    [Fact]
    public async Task GuestRstOnEstablishedConnectionAbortsHostStream()
    {
        using var harness = new Harness();
        using VsockListener listener = harness.Backend.Listen(84);
        harness.Guest.ClaimRawPort(GuestPort);
        harness.Guest.SendRaw(Raw(VsockOp.Request, 84));
        Assert.NotNull(await harness.Guest.WaitRawAsync(h => h.Op == VsockOp.Response, TimeSpan.FromSeconds(5)));
        VsockStream stream = await listener.AcceptAsync(TestContext.Current.CancellationToken);
        harness.Guest.SendRaw(Raw(VsockOp.Rst, 84));
        await Assert.ThrowsAsync<IOException>(async () => _ = await stream.ReadAsync(new byte[1], TestContext.Current.CancellationToken));
        await Harness.WaitUntil(() => harness.Device.ConnectionCount == 0);
        Assert.Equal(0, harness.Metrics.RstSent);
    }

    [Fact]
    public async Task DuplicateRequestResetsTheConnection()
    {
        using var harness = new Harness();
        using VsockListener listener = harness.Backend.Listen(85);
        harness.Guest.ClaimRawPort(GuestPort);
        harness.Guest.SendRaw(Raw(VsockOp.Request, 85));
        Assert.NotNull(await harness.Guest.WaitRawAsync(h => h.Op == VsockOp.Response, TimeSpan.FromSeconds(5)));
        harness.Guest.SendRaw(Raw(VsockOp.Request, 85));
        await ExpectRst(harness, 85);
        await Harness.WaitUntil(() => harness.Device.ConnectionCount == 0);
    }

    [Fact]
    public async Task BadTxChainsAreReturnedWithLengthZeroAndOthersKeepWorking()
    {
        using var harness = new Harness();
        using VsockListener listener = harness.Backend.Listen(86);
        GuestSocket good = await harness.Guest.ConnectAsync(86, cancellationToken: TestContext.Current.CancellationToken);
        VsockStream host = await listener.AcceptAsync(TestContext.Current.CancellationToken);

        harness.Guest.PostRawTxChain((driver, allocator) =>
        {
            // Too short for a header.
            driver.AddChain(Virtio.Queue.Testing.TestBuffer.DeviceReadable(allocator.Allocate(16), 16));
            // Outside guest memory.
            driver.AddChain(Virtio.Queue.Testing.TestBuffer.DeviceReadable(0x10, 64));
            // Device-writable buffer on TX.
            driver.AddChain(Virtio.Queue.Testing.TestBuffer.DeviceWritable(allocator.Allocate(64), 64));
        });
        await Harness.WaitUntil(() => harness.Metrics.TxInvalidChains == 3, what: "3 invalid chains");
        await Harness.WaitUntil(() => harness.Guest.OutstandingTxChains == 0, what: "all chains returned");

        await good.SendAsync(new byte[] { 1, 2, 3 }, TestContext.Current.CancellationToken);
        byte[] got = await Helpers.ReadExactly(host, 3, TestContext.Current.CancellationToken);
        Assert.Equal(new byte[] { 1, 2, 3 }, got);
    }
}
