using Virtio.Vsock.Device.Backends.InProcess;
using Virtio.Vsock.Device.Siblings;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.Siblings;

/// <summary>A hostile or stuck guest cannot make the process hold more than a route's bound, nor stall its siblings.</summary>
public sealed class SiblingBoundsTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact(Timeout = 30_000)]
    public async Task GuestFloodingASiblingIgnoringCreditIsResetAndMemoryStaysBounded()
    {
        using var harness = new SiblingHarness();
        SiblingVm a = harness.Add(3);
        SiblingVm b = harness.Add(4, guestOptions: new GuestSimulatorOptions { BufferSize = 64 * 1024 });
        using GuestListener listener = b.Guest.Listen(5400);
        GuestSocket bystander = await a.Guest.ConnectToAsync(4, 5400, cancellationToken: Token);
        GuestSocket bystanderPeer = await listener.AcceptAsync(Token);

        GuestSocket rogue = await a.Guest.ConnectToAsync(4, 5400, cancellationToken: Token);
        GuestSocket victim = await listener.AcceptAsync(Token);
        rogue.IgnoreCredit = true;

        // The victim never reads; the rogue sends far beyond the 64 KiB it was granted.
        Task flood = rogue.SendAsync(new byte[16 * 1024 * 1024], Token);
        await rogue.Completion.WaitAsync(TimeSpan.FromSeconds(5), Token);
        Assert.True(rogue.WasReset);
        await Assert.ThrowsAnyAsync<Exception>(() => flood);
        await victim.Completion.WaitAsync(TimeSpan.FromSeconds(5), Token);
        Assert.True(victim.WasReset);
        Assert.Equal(0, victim.CreditViolations);
        Assert.Equal(1, a.Siblings.CreditViolations);

        // What the route ever held is bounded by the credit the victim gave (plus one packet).
        Assert.InRange(a.Siblings.PeakQueuedBytes, 0, (64 + 64) * 1024);
        Assert.InRange(a.Siblings.BytesSent, 0, (64 + 64) * 1024);

        // The other connection lost nothing.
        await SiblingEchoTests.Echo(bystander, bystanderPeer, 100_000, 9);
        Assert.Equal(1, a.Device.SiblingConnectionCount);
    }

    [Fact(Timeout = 30_000)]
    public async Task GuestThatStopsTakingRxBuffersCannotGrowMemoryOrStallItsSiblings()
    {
        const int RouteBytes = 1024 * 1024;
        using var harness = new SiblingHarness(new VsockCidMap { MaxQueuedBytesPerRoute = RouteBytes });
        SiblingVm a = harness.Add(3);
        // B advertises a huge receive buffer (credit is no bound), then its driver stops taking RX buffers.
        SiblingVm b = harness.Add(4, guestOptions: new GuestSimulatorOptions { BufferSize = 256 * 1024 * 1024 });
        using GuestListener listener = b.Guest.Listen(5500);
        GuestSocket sender = await a.Guest.ConnectToAsync(4, 5500, cancellationToken: Token);
        GuestSocket stuck = await listener.AcceptAsync(Token);
        b.Guest.RxPaused = true;

        Task send = sender.SendAsync(new byte[32 * 1024 * 1024], Token);
        await sender.Completion.WaitAsync(TimeSpan.FromSeconds(10), Token);
        Assert.True(sender.WasReset);
        await Assert.ThrowsAnyAsync<Exception>(() => send);
        Assert.Equal(1, a.Siblings.RouteFull);
        Assert.InRange(a.Siblings.PeakQueuedBytes, 1, RouteBytes);
        Assert.InRange(a.Siblings.QueuedBytes, 0, RouteBytes);

        // While B is stuck, A's guest still talks to the host and opens nothing new to B in vain... its TX never waited.
        using VsockListener host = a.Backend.Listen(7100);
        GuestSocket toHost = await a.Guest.ConnectAsync(7100, cancellationToken: Token);
        VsockStream hostSide = await host.AcceptAsync(Token);
        byte[] data = Helpers.Pattern(1_000_000, 5);
        Task hostSend = toHost.SendAsync(data, Token);
        Assert.Equal(data, await Helpers.ReadExactly(hostSide, data.Length, Token));
        await hostSend;

        // B's driver resumes: it gets what was queued, then the RST of the connection that overflowed.
        b.Guest.RxPaused = false;
        await stuck.Completion.WaitAsync(TimeSpan.FromSeconds(10), Token);
        Assert.True(stuck.WasReset);
        await Harness.WaitUntil(() => a.Siblings.QueuedBytes == 0 && b.Device.SiblingConnectionCount == 0, what: "route drained");
    }
}
