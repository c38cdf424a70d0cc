using Virtio.Vsock.Device.Siblings;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.Siblings;

/// <summary>The RST rules across guests: no listener, CID outside the group or unknown, unknown connection, unanswered REQUEST.</summary>
public sealed class SiblingRstTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static async Task ExpectRefusedFast(GuestSimulator guest, ulong cid, uint port)
    {
        // "Fast" without a wall clock: "refused" means an RST came before the guest's own connect timeout (otherwise
        // the simulator reports "timed out"), and the cid map's connect timeout is far longer than the guest's, so
        // the RST was the immediate answer, not one sent when an unanswered REQUEST expired.
        Assert.True(guest.Options.ConnectTimeout < new VsockCidMap().ConnectTimeout);
        var error = await Assert.ThrowsAsync<GuestSocketException>(() => guest.ConnectToAsync(cid, port, cancellationToken: Token));
        Assert.Contains("refused", error.Message, StringComparison.Ordinal);
    }

    [Fact(Timeout = 30_000)]
    public async Task SiblingPortWithoutListenerGetsRst()
    {
        using var harness = new SiblingHarness();
        SiblingVm a = harness.Add(3);
        SiblingVm b = harness.Add(4);
        await ExpectRefusedFast(a.Guest, 4, 999);
        await ExpectRefusedFast(b.Guest, 3, 998);
        await Harness.WaitUntil(() => a.Device.SiblingConnectionCount == 0 && b.Device.SiblingConnectionCount == 0);
        Assert.Equal(0, a.Siblings.Unreachable);
    }

    [Fact(Timeout = 30_000)]
    public async Task CidOutsideTheGroupOrUnknownGetsRst()
    {
        using var harness = new SiblingHarness();
        SiblingVm a = harness.Add(3, ["red"]);
        SiblingVm b = harness.Add(4, ["red", "blue"]);
        SiblingVm c = harness.Add(5, ["blue"]);
        using GuestListener atA = a.Guest.Listen(100);
        using GuestListener atB = b.Guest.Listen(100);
        using GuestListener atC = c.Guest.Listen(100);

        Assert.True(harness.Map.CanReach(3, 4));
        Assert.True(harness.Map.CanReach(4, 5));
        Assert.False(harness.Map.CanReach(3, 5));
        Assert.False(harness.Map.CanReach(5, 3));

        await ExpectRefusedFast(a.Guest, 5, 100);
        await ExpectRefusedFast(c.Guest, 3, 100);
        await ExpectRefusedFast(a.Guest, 77, 100);
        await ExpectRefusedFast(a.Guest, 3, 100);
        Assert.Equal(3, a.Siblings.Unreachable);
        Assert.Equal(1, c.Siblings.Unreachable);

        // B shares a group with both.
        GuestSocket ab = await a.Guest.ConnectToAsync(4, 100, cancellationToken: Token);
        await SiblingEchoTests.Echo(ab, await atB.AcceptAsync(Token), 1000, 1);
        GuestSocket cb = await c.Guest.ConnectToAsync(4, 100, cancellationToken: Token);
        await SiblingEchoTests.Echo(cb, await atB.AcceptAsync(Token), 1000, 2);
        Assert.Equal(0, c.Guest.MalformedRxPackets);
    }

    [Fact(Timeout = 30_000)]
    public async Task PacketOfAnUnknownConnectionGetsRstFromTheDeviceAndIsNotRelayed()
    {
        using var harness = new SiblingHarness();
        SiblingVm a = harness.Add(3);
        SiblingVm b = harness.Add(4, guestOptions: new GuestSimulatorOptions { LogReceived = true });
        a.Guest.ClaimRawPort(7000);
        var header = new VsockHeader { SrcCid = 3, DstCid = 4, SrcPort = 7000, DstPort = 5000, Type = VsockType.Stream, Op = VsockOp.Rw, BufAlloc = 65536 };
        a.Guest.SendRaw(header, new byte[] { 1, 2, 3 });
        VsockHeader? rst = await a.Guest.WaitRawAsync(h => h.Op == VsockOp.Rst, TimeSpan.FromSeconds(5));
        Assert.NotNull(rst);
        Assert.Equal(4UL, rst.Value.SrcCid);
        Assert.Equal(5000u, rst.Value.SrcPort);
        Assert.Equal(3UL, rst.Value.DstCid);
        Assert.Equal(7000u, rst.Value.DstPort);

        // An RST of an unknown connection is dropped, never answered. Sentinel: a CREDIT_REQUEST from another port, sent
        // after it, is answered (RST); by then an answer to the RST would have come first.
        a.Guest.ClaimRawPort(7001);
        a.Guest.SendRaw(header with { Op = VsockOp.Rst });
        a.Guest.SendRaw(header with { Op = VsockOp.CreditRequest });
        a.Guest.SendRaw(header with { Op = VsockOp.CreditRequest, SrcPort = 7001 });
        await Harness.WaitUntil(() => a.Guest.RawReceived.Any(h => h.DstPort == 7001), what: "RST for the sentinel credit request");
        Assert.Equal(2, a.Guest.RawReceived.Count(h => h.DstPort == 7000 && h.Op == VsockOp.Rst));
        Assert.Equal(3, a.Guest.RawReceived.Count);
        Assert.Equal(0, a.Siblings.PacketsSent);

        // Nothing was relayed to B: a real connection from A to B, made after, is all B ever received.
        await AssertOnlySentinelReachesB(a, b);
    }

    /// <summary>
    /// Sentinel for "nothing reached B": connects A to a fresh listener at B; A's packets to B are relayed in order, so
    /// once B accepted, anything relayed before would be in B's log: B's log must hold only that connection's packets.
    /// </summary>
    private static async Task AssertOnlySentinelReachesB(SiblingVm a, SiblingVm b)
    {
        using GuestListener sentinelListener = b.Guest.Listen(5999);
        GuestSocket sentinel = await a.Guest.ConnectToAsync(4, 5999, cancellationToken: Token);
        GuestSocket accepted = await sentinelListener.AcceptAsync(Token);
        Assert.NotEmpty(b.Guest.ReceivedLog);
        Assert.All(b.Guest.ReceivedLog, h => Assert.True(
            h.SrcCid == 3 && h.SrcPort == sentinel.LocalPort && h.DstPort == 5999,
            $"B received {h.Op} {h.SrcCid}:{h.SrcPort} -> {h.DstCid}:{h.DstPort} besides the sentinel connection"));
        GC.KeepAlive(accepted);
    }

    [Fact(Timeout = 30_000)]
    public async Task SpoofedSourceCidIsDropped()
    {
        using var harness = new SiblingHarness();
        SiblingVm a = harness.Add(3);
        SiblingVm b = harness.Add(4, guestOptions: new GuestSimulatorOptions { LogReceived = true });
        using GuestListener atB = b.Guest.Listen(5000);
        // A pretends to be CID 5.
        a.Guest.SendRaw(new VsockHeader { SrcCid = 5, DstCid = 4, SrcPort = 1, DstPort = 5000, Type = VsockType.Stream, Op = VsockOp.Request, BufAlloc = 65536 });
        await Harness.WaitUntil(() => a.Device.Metrics.DroppedPackets == 1);
        Assert.Equal(0, a.Siblings.PacketsSent);
        await AssertOnlySentinelReachesB(a, b);
    }

    [Fact(Timeout = 30_000)]
    public async Task UnansweredRequestResetsBothGuests()
    {
        using var harness = new SiblingHarness(new VsockCidMap { ConnectTimeout = TimeSpan.FromMilliseconds(300) });
        SiblingVm a = harness.Add(3, guestOptions: new GuestSimulatorOptions { ConnectTimeout = TimeSpan.FromSeconds(5) });
        SiblingVm b = harness.Add(4);
        // B's packets to port 6000 go to the test, which never answers the REQUEST.
        b.Guest.ClaimRawPort(6000);
        a.Guest.ClaimRawPort(49999);
        a.Guest.SendRaw(new VsockHeader { SrcCid = 3, DstCid = 4, SrcPort = 49999, DstPort = 6000, Type = VsockType.Stream, Op = VsockOp.Request, BufAlloc = 65536 });
        Assert.NotNull(await b.Guest.WaitRawAsync(h => h.Op == VsockOp.Request && h.SrcCid == 3, TimeSpan.FromSeconds(5)));
        Assert.NotNull(await a.Guest.WaitRawAsync(h => h.Op == VsockOp.Rst && h.SrcCid == 4, TimeSpan.FromSeconds(5)));
        Assert.NotNull(await b.Guest.WaitRawAsync(h => h.Op == VsockOp.Rst && h.SrcCid == 3, TimeSpan.FromSeconds(5)));
        Assert.InRange(a.Siblings.ConnectTimeouts + b.Siblings.ConnectTimeouts, 1, 2);
        await Harness.WaitUntil(() => a.Device.SiblingConnectionCount == 0 && b.Device.SiblingConnectionCount == 0);
    }
}
