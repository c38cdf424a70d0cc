using Virtio.Vsock.Device.Backends.InProcess;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests;

/// <summary>Half-close, full close, limits, timeouts, transport reset.</summary>
public sealed class LifecycleTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task GuestHalfCloseHostStillSends()
    {
        using var harness = new Harness();
        using VsockListener listener = harness.Backend.Listen(100);
        GuestSocket guest = await harness.Guest.ConnectAsync(100, cancellationToken: Token);
        VsockStream host = await listener.AcceptAsync(Token);
        await guest.SendAsync(new byte[] { 1, 2, 3 }, Token);
        guest.Shutdown(ShutdownFlags.Send);
        Assert.Equal(new byte[] { 1, 2, 3 }, await Helpers.ReadAll(host, Token));

        // The host can still send after seeing EOF.
        byte[] reply = Helpers.Pattern(50_000, 3);
        await host.WriteAsync(reply, Token);
        Assert.Equal(reply, await Helpers.ReadExactly(guest, reply.Length, Token));
        host.CompleteWrites();
        Assert.Equal(0, await guest.ReceiveAsync(new byte[1], Token));
        await Harness.WaitUntil(() => harness.Device.ConnectionCount == 0, what: "closed after both halves");
        await host.DisposeAsync();
        Assert.False(guest.WasReset);
        Assert.Equal(1, harness.Metrics.ConnectionsClosed);
    }

    [Fact]
    public async Task HostHalfCloseGuestStillSends()
    {
        using var harness = new Harness();
        using VsockListener listener = harness.Backend.Listen(101);
        GuestSocket guest = await harness.Guest.ConnectAsync(101, cancellationToken: Token);
        VsockStream host = await listener.AcceptAsync(Token);
        await host.WriteAsync(new byte[] { 9, 8 }, Token);
        host.CompleteWrites();
        Assert.Equal(new byte[] { 9, 8 }, await Helpers.ReadAll(guest, Token));
        Assert.Equal(ShutdownFlags.Send, guest.PeerShutdown);

        byte[] data = Helpers.Pattern(200_000, 4);
        Task send = guest.SendAsync(data, Token);
        Assert.Equal(data, await Helpers.ReadExactly(host, data.Length, Token));
        await send;
        await guest.CloseAsync();
        Assert.Equal(0, await host.ReadAsync(new byte[1], Token));
        Assert.False(guest.WasReset);
        await Harness.WaitUntil(() => harness.Device.ConnectionCount == 0);
    }

    [Fact]
    public async Task HostDisposeClosesFullyAfterData()
    {
        using var harness = new Harness();
        using VsockListener listener = harness.Backend.Listen(102);
        GuestSocket guest = await harness.Guest.ConnectAsync(102, cancellationToken: Token);
        VsockStream host = await listener.AcceptAsync(Token);
        byte[] data = Helpers.Pattern(20_000, 5);
        await host.WriteAsync(data, Token);
        await host.DisposeAsync();
        Assert.Equal(data, await Helpers.ReadAll(guest, Token));
        await guest.Completion.WaitAsync(TimeSpan.FromSeconds(5), Token);
        Assert.False(guest.WasReset);
        await Harness.WaitUntil(() => harness.Device.ConnectionCount == 0);
        Assert.Equal(1, harness.Metrics.ConnectionsClosed);
    }

    [Fact]
    public async Task ConnectionLimitGivesRst()
    {
        using var harness = new Harness(new VsockDeviceOptions { MaxConnections = 4 });
        using VsockListener listener = harness.Backend.Listen(103);
        var sockets = new List<GuestSocket>();
        for (int i = 0; i < 4; i++)
        {
            sockets.Add(await harness.Guest.ConnectAsync(103, cancellationToken: Token));
        }

        await Assert.ThrowsAsync<GuestSocketException>(() => harness.Guest.ConnectAsync(103, cancellationToken: Token));
        Assert.Equal(4, harness.Device.ConnectionCount);
        await sockets[0].CloseAsync();
        await Harness.WaitUntil(() => harness.Device.ConnectionCount == 3);
        sockets.Add(await harness.Guest.ConnectAsync(103, cancellationToken: Token));

        // Host-initiated connections count too.
        using GuestListener guestListener = harness.Guest.Listen(900);
        VsockConnectException failure = await Assert.ThrowsAsync<VsockConnectException>(() => harness.Backend.ConnectAsync(900, cancellationToken: Token));
        Assert.Equal(VsockConnectFailure.NoResources, failure.Reason);
    }

    private sealed class SilentBackend : IVsockBackend
    {
        public int Requests;

        public void Attach(IVsockBackendHost host)
        {
        }

        public void OnGuestConnect(IVsockIncomingConnection connection) => Interlocked.Increment(ref Requests);

        public void OnDeviceReset()
        {
        }
    }

    [Fact]
    public async Task BackendThatNeverAnswersTimesOutWithRst()
    {
        var backend = new SilentBackend();
        var options = new VsockDeviceOptions { ConnectTimeout = TimeSpan.FromMilliseconds(200) };
        // The guest waits far longer than the device's timeout: "refused" then means the device's RST ended it, not
        // the guest's own timeout, without a wall-clock upper bound that a loaded machine could break.
        (GuestSimulator guest, VsockDevice device) = GuestSimulator.Create(options, backend, new GuestSimulatorOptions { ConnectTimeout = TimeSpan.FromSeconds(30) });
        using (guest)
        using (device)
        {
            var started = DateTime.UtcNow;
            var error = await Assert.ThrowsAsync<GuestSocketException>(() => guest.ConnectAsync(104, cancellationToken: Token));
            TimeSpan elapsed = DateTime.UtcNow - started;
            Assert.Contains("refused", error.Message, StringComparison.Ordinal);
            Assert.True(elapsed >= TimeSpan.FromMilliseconds(150), $"RST after {elapsed}, before the 200 ms connect timeout");
            Assert.Equal(1, device.Metrics.ConnectTimeouts);

            // The count is published at the end of the loop turn that sent the RST.
            await Harness.WaitUntil(() => device.ConnectionCount == 0, what: "connection removed");
        }
    }

    [Fact]
    public async Task HostConnectToGuestThatNeverAnswersTimesOut()
    {
        using var harness = new Harness(new VsockDeviceOptions { ConnectTimeout = TimeSpan.FromMilliseconds(200) });
        harness.Guest.ClaimRawPort(901);
        VsockConnectException failure = await Assert.ThrowsAsync<VsockConnectException>(() => harness.Backend.ConnectAsync(901, cancellationToken: Token));
        Assert.Equal(VsockConnectFailure.TimedOut, failure.Reason);
        Assert.NotNull(await harness.Guest.WaitRawAsync(h => h.Op == VsockOp.Rst && h.DstPort == 901, TimeSpan.FromSeconds(2)));
        Assert.Equal(0, harness.Device.ConnectionCount);
    }

    [Fact]
    public async Task HostConnectToGuestWithoutListenerIsRefused()
    {
        using var harness = new Harness();
        VsockConnectException failure = await Assert.ThrowsAsync<VsockConnectException>(() => harness.Backend.ConnectAsync(902, cancellationToken: Token));
        Assert.Equal(VsockConnectFailure.Refused, failure.Reason);
    }

    [Fact]
    public async Task ShutdownTimeoutResetsWhenTheGuestNeverAnswers()
    {
        using var harness = new Harness(new VsockDeviceOptions { ShutdownTimeout = TimeSpan.FromMilliseconds(200) });
        using VsockListener listener = harness.Backend.Listen(105);
        harness.Guest.ClaimRawPort(7001);
        harness.Guest.SendRaw(new VsockHeader { SrcCid = 3, DstCid = 2, SrcPort = 7001, DstPort = 105, Type = VsockType.Stream, Op = VsockOp.Request, BufAlloc = 65536 });
        VsockStream host = await listener.AcceptAsync(Token);
        await host.DisposeAsync();
        Assert.NotNull(await harness.Guest.WaitRawAsync(h => h.Op == VsockOp.Shutdown && h.Flags == 3, TimeSpan.FromSeconds(2)));
        Assert.NotNull(await harness.Guest.WaitRawAsync(h => h.Op == VsockOp.Rst, TimeSpan.FromSeconds(2)));
        Assert.Equal(1, harness.Metrics.ShutdownTimeouts);
        Assert.Equal(0, harness.Device.ConnectionCount);
    }

    [Fact]
    public async Task TransportResetDropsConnectionsButListenersSurvive()
    {
        using var harness = new Harness();
        using VsockListener listener = harness.Backend.Listen(106);
        GuestSocket guest = await harness.Guest.ConnectAsync(106, cancellationToken: Token);
        VsockStream host = await listener.AcceptAsync(Token);
        harness.Device.SendTransportReset();
        await Harness.WaitUntil(() => harness.Guest.TransportResets == 1, what: "event delivered");
        Assert.Equal(GuestSocketState.Closed, guest.State);
        Assert.Equal(0, harness.Device.ConnectionCount);
        await Assert.ThrowsAsync<IOException>(async () => _ = await host.ReadAsync(new byte[1], Token));
        Assert.Equal(1, harness.Metrics.EventsSent);

        GuestSocket again = await harness.Guest.ConnectAsync(106, cancellationToken: Token);
        VsockStream host2 = await listener.AcceptAsync(Token);
        await again.SendAsync(new byte[] { 42 }, Token);
        Assert.Equal(42, (await Helpers.ReadExactly(host2, 1, Token))[0]);
    }

    [Fact]
    public async Task DeviceResetAbortsHostStreams()
    {
        using var harness = new Harness();
        using VsockListener listener = harness.Backend.Listen(107);
        GuestSocket guest = await harness.Guest.ConnectAsync(107, cancellationToken: Token);
        VsockStream host = await listener.AcceptAsync(Token);
        harness.Device.Reset();
        await Assert.ThrowsAsync<IOException>(async () => _ = await host.ReadAsync(new byte[1], Token));
        Assert.Equal(0, harness.Device.ConnectionCount);
        Assert.Equal(0UL, harness.Device.Features);
    }

    [Fact]
    public async Task CancelledHostConnectResetsTheAttempt()
    {
        using var harness = new Harness(new VsockDeviceOptions { ConnectTimeout = TimeSpan.FromSeconds(10) });
        harness.Guest.ClaimRawPort(903);
        using var cts = new CancellationTokenSource(100);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => harness.Backend.ConnectAsync(903, cancellationToken: cts.Token));
        Assert.NotNull(await harness.Guest.WaitRawAsync(h => h.Op == VsockOp.Rst && h.DstPort == 903, TimeSpan.FromSeconds(2)));
        await Harness.WaitUntil(() => harness.Device.ConnectionCount == 0);
    }
}
