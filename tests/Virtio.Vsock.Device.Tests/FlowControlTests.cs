using Virtio.Vsock.Device.Backends.InProcess;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests;

/// <summary>Credit: stalls and recovery both ways, a guest that ignores credit, bounded memory.</summary>
public sealed class FlowControlTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task HostReaderPausesThenResumes()
    {
        using var harness = new Harness(new VsockDeviceOptions { BufferSize = 64 * 1024 }, hostBufferSize: 16 * 1024);
        using VsockListener listener = harness.Backend.Listen(200);
        GuestSocket guest = await harness.Guest.ConnectAsync(200, cancellationToken: Token);
        VsockStream host = await listener.AcceptAsync(Token);
        byte[] data = Helpers.Pattern(1_000_000, 6);
        Task send = guest.SendAsync(data, Token);

        // The host does not read: the guest can only fill the host buffer plus the device's buf_alloc. It gets there
        // (the device returns the credit of what it moved into the host buffer), then stalls.
        const long Window = (16 + 64) * 1024;
        await Harness.WaitUntil(() => harness.Metrics.TxBytes >= Window || send.IsCompleted, what: "guest filled host buffer + buf_alloc");
        Assert.False(send.IsCompleted);
        long accepted = harness.Metrics.TxBytes;
        Assert.InRange(accepted, 1, Window);

        // Sentinel: a round trip on another connection; the device processed all the guest queued before it and any
        // credit it would (wrongly) have given back had time to be used. Still nothing more was accepted.
        await harness.RoundTripSentinel(299, Token);
        Assert.Equal(accepted + Harness.SentinelBytes, harness.Metrics.TxBytes);
        Assert.False(send.IsCompleted);

        // Resume: everything arrives, intact.
        byte[] received = await Helpers.ReadExactly(host, data.Length, Token);
        await send;
        Assert.Equal(data, received);
        Assert.Equal(0, harness.Metrics.CreditViolations);
        Assert.True(harness.Metrics.CreditUpdatesSent > 0);
    }

    [Fact]
    public async Task GuestStopsReadingThenResumes()
    {
        using var harness = new Harness(guestOptions: new GuestSimulatorOptions { BufferSize = 64 * 1024 });
        using VsockListener listener = harness.Backend.Listen(201);
        GuestSocket guest = await harness.Guest.ConnectAsync(201, cancellationToken: Token);
        VsockStream host = await listener.AcceptAsync(Token);
        byte[] data = Helpers.Pattern(2_000_000, 7);
        Task send = host.WriteAsync(data, Token).AsTask();

        // The guest does not read: the device fills the guest's buf_alloc, then stalls on credit.
        await Harness.WaitUntil(() => (guest.BufferedReceiveBytes >= 64 * 1024 && harness.Metrics.CreditStalls > 0) || send.IsCompleted, what: "guest buffer full, device stalled");
        Assert.False(send.IsCompleted);
        Assert.InRange(guest.BufferedReceiveBytes, 1, 64 * 1024);
        Assert.True(harness.Metrics.CreditStalls > 0);

        // Sentinel: after a round trip on another connection, the device still sent nothing beyond the credit.
        await harness.RoundTripSentinel(298, Token);
        Assert.InRange(guest.BufferedReceiveBytes, 1, 64 * 1024);
        Assert.Equal(0, guest.CreditViolations);
        Assert.False(send.IsCompleted);

        byte[] received = await Helpers.ReadExactly(guest, data.Length, Token);
        await send;
        Assert.Equal(data, received);
        Assert.Equal(0, guest.CreditViolations);
        // No trickling: stalls end with a credit update, not with a stream of tiny packets.
        Assert.True(guest.SmallRwPacketsReceived <= 2, $"{guest.SmallRwPacketsReceived} tiny RW packets");
    }

    [Fact]
    public async Task GuestShutdownReceiveFailsAHostWriteThatWaitsForRoom()
    {
        using var harness = new Harness(guestOptions: new GuestSimulatorOptions { BufferSize = 16 * 1024 }, hostBufferSize: 16 * 1024);
        using VsockListener listener = harness.Backend.Listen(202);
        GuestSocket guest = await harness.Guest.ConnectAsync(202, cancellationToken: Token);
        VsockStream host = await listener.AcceptAsync(Token);
        Task send = host.WriteAsync(Helpers.Pattern(1_000_000, 8), Token).AsTask();

        // The guest does not read: its buf_alloc and the host buffer fill, and the write waits for room ...
        await Harness.WaitUntil(() => harness.Metrics.CreditStalls > 0 || send.IsCompleted, what: "device stalled on the guest's credit");
        Assert.False(send.IsCompleted);

        // ... until the guest shuts down reading: the write fails (EPIPE), and so does the next one.
        guest.Shutdown(ShutdownFlags.Receive);
        await Assert.ThrowsAsync<IOException>(() => send.WaitAsync(TimeSpan.FromSeconds(20), Token));
        await Assert.ThrowsAsync<IOException>(() => host.WriteAsync(new byte[1], Token).AsTask());
        Assert.False(guest.WasReset);
    }

    [Fact]
    public async Task GuestIgnoringCreditIsResetAndMemoryStaysBounded()
    {
        using var harness = new Harness(new VsockDeviceOptions { BufferSize = 16 * 1024 }, hostBufferSize: 8 * 1024);
        using VsockListener listener = harness.Backend.Listen(202);
        using GuestListener unrelatedListener = harness.Guest.Listen(999);
        GuestSocket bystander = await harness.Guest.ConnectAsync(202, cancellationToken: Token);
        VsockStream bystanderHost = await listener.AcceptAsync(Token);

        GuestSocket rogue = await harness.Guest.ConnectAsync(202, cancellationToken: Token);
        VsockStream rogueHost = await listener.AcceptAsync(Token);
        rogue.IgnoreCredit = true;
        Task flood = rogue.SendAsync(new byte[4 * 1024 * 1024], Token);
        await rogue.Completion.WaitAsync(TimeSpan.FromSeconds(5), Token);
        Assert.True(rogue.WasReset);
        Assert.Equal(1, harness.Metrics.CreditViolations);
        // What the device accepted is bounded by what it advertised plus what the host stream took.
        Assert.InRange(harness.Metrics.TxBytes, 0, (16 + 8 + 64) * 1024);
        await Assert.ThrowsAnyAsync<Exception>(() => flood);

        // The other connection lost nothing.
        await bystander.SendAsync(new byte[] { 5, 6, 7 }, Token);
        Assert.Equal(new byte[] { 5, 6, 7 }, await Helpers.ReadExactly(bystanderHost, 3, Token));
        GC.KeepAlive(rogueHost);
    }

    [Fact]
    public async Task CreditRequestIsAnswered()
    {
        using var harness = new Harness();
        using VsockListener listener = harness.Backend.Listen(203);
        harness.Guest.ClaimRawPort(7100);
        harness.Guest.SendRaw(new VsockHeader { SrcCid = 3, DstCid = 2, SrcPort = 7100, DstPort = 203, Type = VsockType.Stream, Op = VsockOp.Request, BufAlloc = 4096 });
        Assert.NotNull(await harness.Guest.WaitRawAsync(h => h.Op == VsockOp.Response, TimeSpan.FromSeconds(5)));
        harness.Guest.SendRaw(new VsockHeader { SrcCid = 3, DstCid = 2, SrcPort = 7100, DstPort = 203, Type = VsockType.Stream, Op = VsockOp.CreditRequest, BufAlloc = 4096 });
        VsockHeader? update = await harness.Guest.WaitRawAsync(h => h.Op == VsockOp.CreditUpdate, TimeSpan.FromSeconds(5));
        Assert.NotNull(update);
        Assert.Equal(harness.DeviceOptions.BufferSize, update.Value.BufAlloc);
    }

    [Fact]
    public async Task DeviceNeverSendsBeyondGuestCreditWithWrappingCounters()
    {
        // A guest with a tiny buffer, reading slowly: many stall/resume cycles.
        using var harness = new Harness(guestOptions: new GuestSimulatorOptions { BufferSize = 8192 });
        using VsockListener listener = harness.Backend.Listen(204);
        GuestSocket guest = await harness.Guest.ConnectAsync(204, cancellationToken: Token);
        VsockStream host = await listener.AcceptAsync(Token);
        byte[] data = Helpers.Pattern(3_000_000, 8);
        Task send = host.WriteAsync(data, Token).AsTask();
        var received = new MemoryStream();
        var buffer = new byte[3000];
        while (received.Length < data.Length)
        {
            int n = await guest.ReceiveAsync(buffer, Token);
            received.Write(buffer, 0, n);
        }

        await send;
        Assert.Equal(data, received.ToArray());
        Assert.Equal(0, guest.CreditViolations);
    }
}
