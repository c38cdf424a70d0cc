using System.Net.Sockets;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.UnixBackend;

/// <summary>
/// Host data in bursts: one read fills several guest RX buffers (one <c>recvmsg</c>), never beyond the guest's
/// credit, every byte in order, and the RX buffers a burst took but did not fill go back to the guest.
/// </summary>
public sealed class UnixBackendBurstTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory(Timeout = 60_000)]
    [InlineData(GuestBufferLayout.Linear, 256u * 1024)]
    [InlineData(GuestBufferLayout.HeaderAndData, 256u * 1024)]
    [InlineData(GuestBufferLayout.Linear, 10_000u)]
    public async Task BurstsFillSeveralRxBuffersWithinCreditAndLoseNoBuffer(GuestBufferLayout rxLayout, uint guestBufAlloc)
    {
        // 8 MiB through a 256-entry RX queue: a burst that kept even one unfilled buffer per read would run the guest
        // out of RX buffers long before the end.
        const int Total = 8 << 20;
        await using var h = new UnixBackendHarness(guestOptions: new GuestSimulatorOptions { RxLayout = rxLayout, BufferSize = guestBufAlloc });
        using Socket listener = h.ListenOnHostPort(6400);
        Task<Socket> accept = listener.AcceptAsync(Token).AsTask();
        GuestSocket guest = await h.Guest.ConnectAsync(6400, cancellationToken: Token);
        using Socket host = await accept;

        // Writes of odd sizes, so bursts end inside buffers and leave taken buffers unfilled.
        byte[] data = Helpers.Pattern(Total, 31);
        Task send = Task.Run(async () =>
        {
            int offset = 0;
            int size = 1;
            while (offset < Total)
            {
                int n = Math.Min(size, Total - offset);
                await host.SendAsync(data.AsMemory(offset, n), SocketFlags.None, Token);
                offset += n;
                size = size >= 200_000 ? 1 : (size * 3) + 7;
            }

            host.Shutdown(SocketShutdown.Send);
        }, Token);

        byte[] received = await Helpers.ReadAll(guest, Token);
        await send;
        Assert.Equal(Total, received.Length);
        Assert.True(data.AsSpan().SequenceEqual(received), "the guest received different bytes");
        Assert.Equal(0, guest.CreditViolations);
        Assert.Equal(0, h.Guest.MalformedRxPackets);
        Assert.True(h.Device.Metrics.RxBursts > 0, "no read filled more than one RX buffer");

        // Every RX buffer the guest posted is back with the device: none was taken by a burst and kept.
        int posted = h.Guest.Options.QueueSize / (rxLayout == GuestBufferLayout.Linear ? 1 : 2);
        int available = 0;
        await Harness.WaitUntil(
            () => (available = h.Device.SnapshotAsync().GetAwaiter().GetResult().RxBuffersAvailable) == posted,
            what: $"all {posted} RX buffers available to the device again");
        Assert.Equal(posted, available);
    }
}
