using Virtio.Vsock.Device.Siblings;
using Virtio.Vsock.Device.Tests.Diagnostics;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.Siblings;

/// <summary>
/// Access rules between sibling guests (<see cref="VsockCidMap.Access"/>): a pair both ends allow connects; a pair
/// either end's rules leave out gets RST at once, like a port nobody listens on, whichever guest connects, and the
/// refusal is counted on the connecting guest's device and published by the meter.
/// </summary>
public sealed class SiblingAccessTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static async Task ExpectRefusedFast(GuestSimulator guest, ulong cid, uint port)
    {
        // "refused" means an RST came before the guest's own connect timeout, which is far shorter than the map's:
        // the RST was the immediate answer, not an unanswered REQUEST expiring.
        Assert.True(guest.Options.ConnectTimeout < new VsockCidMap().ConnectTimeout);
        var error = await Assert.ThrowsAsync<GuestSocketException>(() => guest.ConnectToAsync(cid, port, cancellationToken: Token));
        Assert.Contains("refused", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Rules_allow_a_pair_only_when_both_ends_name_each_other_or_have_no_rules()
    {
        var rules = new SiblingAccessRules(new Dictionary<ulong, IReadOnlyCollection<ulong>> { [3] = [4], [6] = [] });

        Assert.True(rules.Allows(3, 4));
        Assert.True(rules.Allows(4, 3));
        Assert.False(rules.Allows(3, 5));
        Assert.False(rules.Allows(5, 3));
        Assert.True(rules.Allows(4, 5));
        Assert.False(rules.Allows(6, 4));
        Assert.False(rules.Allows(4, 6));
        Assert.Equal(new HashSet<ulong> { 4 }, rules.PeersOf(3));
        Assert.Null(rules.PeersOf(4));
        Assert.True(SiblingAccessRules.AllowAll.IsEmpty);
        Assert.True(SiblingAccessRules.AllowAll.Allows(3, 5));
    }

    [Fact(Timeout = 30_000)]
    public async Task Allowed_pair_connects_refused_pair_gets_rst_and_is_counted()
    {
        // Three guests in one group; 731 may talk only with 732. 732 and 733 have no rules of their own.
        var map = new VsockCidMap
        {
            Access = new SiblingAccessRules(new Dictionary<ulong, IReadOnlyCollection<ulong>> { [731] = [732] }),
        };
        using var harness = new SiblingHarness(map);
        SiblingVm a = harness.Add(731);
        SiblingVm b = harness.Add(732);
        SiblingVm c = harness.Add(733);
        using IDisposable metricsA = VsockMeter.Register(a.Device);
        using IDisposable metricsC = VsockMeter.Register(c.Device);
        using GuestListener atA = a.Guest.Listen(100);
        using GuestListener atB = b.Guest.Listen(100);
        using GuestListener atC = c.Guest.Listen(100);
        Assert.True(map.CanReach(731, 733));
        Assert.False(map.MayConnect(731, 733));
        Assert.True(map.MayConnect(731, 732));

        // Allowed both ways.
        GuestSocket ab = await a.Guest.ConnectToAsync(732, 100, cancellationToken: Token);
        await SiblingEchoTests.Echo(ab, await atB.AcceptAsync(Token), 1000, 1);
        GuestSocket ba = await b.Guest.ConnectToAsync(731, 100, cancellationToken: Token);
        await SiblingEchoTests.Echo(ba, await atA.AcceptAsync(Token), 1000, 2);

        // Refused both ways, although both guests listen: 731's rules leave 733 out.
        await ExpectRefusedFast(a.Guest, 733, 100);
        await ExpectRefusedFast(c.Guest, 731, 100);
        Assert.Equal(1, a.Siblings.AccessDenied);
        Assert.Equal(1, c.Siblings.AccessDenied);
        Assert.Equal(0, b.Siblings.AccessDenied);
        Assert.Equal(0, a.Siblings.Unreachable);
        Assert.Equal(0, c.Siblings.Unreachable);

        // Nothing reached the refused guests' listeners: the next connection each accepts is the allowed one that follows.
        GuestSocket ba2 = await b.Guest.ConnectToAsync(731, 100, cancellationToken: Token);
        await SiblingEchoTests.Echo(ba2, await atA.AcceptAsync(Token), 1000, 5);
        GuestSocket cb = await c.Guest.ConnectToAsync(732, 100, cancellationToken: Token);
        await SiblingEchoTests.Echo(cb, await atB.AcceptAsync(Token), 1000, 3);
        GuestSocket bc = await b.Guest.ConnectToAsync(733, 100, cancellationToken: Token);
        await SiblingEchoTests.Echo(bc, await atC.AcceptAsync(Token), 1000, 4);
        Assert.Equal(1, c.Siblings.AccessDenied);

        Assert.Equal(1, MeterReader.Collect(731)["vsock.sibling.access_denied"]);
        Assert.Equal(1, MeterReader.Collect(733)["vsock.sibling.access_denied"]);
        Assert.Equal(0, a.Guest.MalformedRxPackets);
        Assert.Equal(0, c.Guest.MalformedRxPackets);
    }
}
