using System.Net.Sockets;
using Virtio.Vsock.Device.Tests.Unix;
using Virtio.Vsock.Device.Tests.UnixBackend;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.Diagnostics;

/// <summary>The <c>VirtioVsock</c> meter, read with a <see cref="System.Diagnostics.Metrics.MeterListener"/> while real traffic flows.</summary>
public sealed class VsockMeterTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact(Timeout = 30_000)]
    public async Task CountersAndGaugesFollowTheDeviceWithCidAndDirectionTags()
    {
        const ulong cid = 0x51_0001;
        await using var h = new UnixBackendHarness(new VsockDeviceOptions { GuestCid = cid });
        Assert.Empty(MeterReader.Collect(cid));
        using IDisposable registration = VsockMeter.Register(h.Device, () => h.Backend.Counters.ForMeter());

        using Socket listener = h.ListenOnHostPort(6100);
        Task<Socket> accepted = listener.AcceptAsync(Token).AsTask();
        GuestSocket guest = await h.Guest.ConnectAsync(6100, cancellationToken: Token);
        using Socket host = await accepted;
        byte[] data = Helpers.Pattern(10_000, 3);
        await guest.SendAsync(data, Token);
        Assert.Equal(data, await UnixTestSockets.ReadExactlyOrEofAsync(host, data.Length));
        await host.SendAsync(data.AsMemory(0, 1234), SocketFlags.None, Token);
        byte[] back = new byte[1234];
        int got = 0;
        while (got < back.Length)
        {
            got += await guest.ReceiveAsync(back.AsMemory(got), Token);
        }

        Assert.True(await UnixTestSockets.EventuallyAsync(() => h.Device.ConnectionCount == 1 && h.Device.Metrics.RxBytes == 1234));
        Dictionary<string, long> open = MeterReader.Collect(cid);
        Assert.Equal(h.Device.Metrics.TxPackets, open["vsock.packets/guest_to_host"]);
        Assert.Equal(h.Device.Metrics.RxPackets, open["vsock.packets/host_to_guest"]);
        Assert.Equal(10_000, open["vsock.bytes/guest_to_host"]);
        Assert.Equal(1234, open["vsock.bytes/host_to_guest"]);
        Assert.Equal(1, open["vsock.connections.opened"]);
        Assert.Equal(1, open["vsock.connections.live/host"]);
        Assert.Equal(0, open["vsock.connections.live/sibling"]);
        Assert.Equal(1, open["vsock.host.connects/guest/ok"]);
        Assert.Equal(0, open["vsock.connections.credit_stalled"]);
        Assert.Equal(0, open["vsock.buffered_bytes"]);
        Assert.True(open["vsock.rx_buffers.available"] > 0, "the simulator keeps RX buffers posted");
        Assert.True(open["vsock.kicks"] > 0);
        Assert.True(open.ContainsKey("vsock.notifications.repeated"), "the lost-notification counter is published");

        await guest.CloseAsync();
        Assert.True(await UnixTestSockets.EventuallyAsync(() => h.Device.ConnectionCount == 0));
        Dictionary<string, long> closed = MeterReader.Collect(cid);
        Assert.Equal(0, closed["vsock.connections.live/host"]);
        Assert.Equal(1, closed["vsock.connections.closed"] + closed["vsock.connections.reset"]);

        registration.Dispose();
        Assert.Empty(MeterReader.Collect(cid));
    }

    [Fact(Timeout = 30_000)]
    public async Task SnapshotShowsAHostProgramThatDoesNotReadAsAHostSocketStall()
    {
        const ulong cid = 0x51_0002;
        await using var h = new UnixBackendHarness(new VsockDeviceOptions { GuestCid = cid });
        using IDisposable registration = VsockMeter.Register(h.Device, () => h.Backend.Counters.ForMeter());
        using Socket listener = h.ListenOnHostPort(6101);
        Task<Socket> accepted = listener.AcceptAsync(Token).AsTask();
        GuestSocket guest = await h.Guest.ConnectAsync(6101, cancellationToken: Token);
        using Socket host = await accepted;

        // The host program never reads: its socket buffer fills, then the device's buffer for the connection.
        // Read on the device's own clock for stalls (Environment.TickCount64, coarse: a jiffy), so the bound below is
        // exact: a Stopwatch started here can read a millisecond less than two coarse readings around the same span.
        long sendingSince = Environment.TickCount64;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Token);
        Task sending = Task.Run(async () =>
        {
            byte[] chunk = Helpers.Pattern(64 * 1024, 5);
            while (!stop.IsCancellationRequested)
            {
                await guest.SendAsync(chunk, stop.Token);
            }
        }, stop.Token);

        VsockConnectionInfo? info = null;
        Assert.True(await UnixTestSockets.EventuallyAsync(() =>
        {
            VsockDeviceSnapshot snapshot = h.Device.SnapshotAsync().WaitAsync(TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();
            info = snapshot.Connections.SingleOrDefault();
            return info is { Stall: VsockStallReason.HostSocket, BufferedToHost: > 0 };
        }, 20_000), $"last seen: {info}");
        Assert.Equal("Established", info!.State);
        Assert.Equal(6101u, info.HostPort);
        Assert.Equal(cid, info.GuestCid);
        Assert.Equal(guest.LocalPort, info.GuestPort);
        Assert.Equal(h.DeviceOptions.BufferSize - info.BufferedToHost, info.OurCredit);
        Assert.True(MeterReader.Collect(cid)["vsock.buffered_bytes"] > 0);

        // The stall's duration counts from when the host socket was found full: it grows while the stall lasts and
        // never exceeds the time since the guest started sending.
        long first = info.StalledMs;
        Assert.True(await UnixTestSockets.EventuallyAsync(() =>
        {
            info = h.Device.SnapshotAsync().WaitAsync(TimeSpan.FromSeconds(5)).GetAwaiter().GetResult().Connections.SingleOrDefault();
            return info is { Stall: VsockStallReason.HostSocket } && info.StalledMs >= first + 200;
        }, 20_000), $"last seen: {info}");
        long sendingMs = Environment.TickCount64 - sendingSince;
        Assert.True(info!.StalledMs <= sendingMs, $"stalled {info.StalledMs} ms, sending for {sendingMs} ms");

        await stop.CancelAsync();
        guest.Abort();
        try
        {
            await sending;
        }
        catch (Exception ex) when (ex is OperationCanceledException or InvalidOperationException or IOException)
        {
            // The send loop ends by cancellation or on the aborted socket.
        }
    }
}
