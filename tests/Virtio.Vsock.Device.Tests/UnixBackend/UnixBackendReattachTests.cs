using System.Net.Sockets;
using Virtio.Vsock.Device.Tests.Unix;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.UnixBackend;

/// <summary>
/// A frontend disconnect/reconnect at the device level (<see cref="GuestSimulator.Reattach"/>: device reset,
/// then memory and queues set up again where QEMU resumes them): live connections end, new ones work.
/// </summary>
public sealed class UnixBackendReattachTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact(Timeout = 60_000)]
    public async Task ReattachEndsLiveConnectionsAndNewOnesWork()
    {
        await using var h = new UnixBackendHarness();
        using GuestListener guestListener = h.Guest.Listen(9100);
        using Socket hostListener = h.ListenOnHostPort(9101);

        GuestSocket fromGuest = await h.Guest.ConnectAsync(9101, cancellationToken: Token);
        using Socket fromGuestHost = await hostListener.AcceptAsync(Token);
        await fromGuest.SendAsync("a"u8.ToArray(), Token);
        Assert.Equal("a"u8.ToArray(), await UnixTestSockets.ReadExactlyOrEofAsync(fromGuestHost, 1));
        (Socket toGuestHost, _) = await h.ConnectToGuestAsync(9100, token: Token);
        using Socket toGuestHostOwned = toGuestHost;
        GuestSocket toGuest = await guestListener.AcceptAsync(Token);
        Assert.Equal(2, h.Device.ConnectionCount);

        h.Guest.Reattach();

        // The host sides of both connections are closed by the reset (end of stream or reset, well before the deadline).
        Assert.Empty(await UnixTestSockets.ReadToEndAsync(fromGuestHost, 10_000));
        Assert.Empty(await UnixTestSockets.ReadToEndAsync(toGuestHost, 10_000));
        Assert.True(await UnixTestSockets.EventuallyAsync(() => h.Device.ConnectionCount == 0));
        Assert.Equal(1, h.Guest.Reattachments);

        // The guest learns when it next sends: the new device does not know the connection and answers RST.
        await fromGuest.SendAsync("b"u8.ToArray(), Token);
        await fromGuest.Completion.WaitAsync(TimeSpan.FromSeconds(10), Token);
        Assert.True(fromGuest.WasReset);
        toGuest.Abort();

        // New connections work both ways on the re-attached device.
        GuestSocket again = await h.Guest.ConnectAsync(9101, cancellationToken: Token);
        using Socket againHost = await hostListener.AcceptAsync(Token);
        await again.SendAsync("hello"u8.ToArray(), Token);
        Assert.Equal("hello"u8.ToArray(), await UnixTestSockets.ReadExactlyOrEofAsync(againHost, 5));
        (Socket back, _) = await h.ConnectToGuestAsync(9100, token: Token);
        using Socket backOwned = back;
        GuestSocket backGuest = await guestListener.AcceptAsync(Token);
        await back.SendAsync("world"u8.ToArray(), SocketFlags.None, Token);
        byte[] buffer = new byte[5];
        int read = 0;
        while (read < 5)
        {
            int n = await backGuest.ReceiveAsync(buffer.AsMemory(read), Token).WaitAsync(TimeSpan.FromSeconds(10), Token);
            Assert.NotEqual(0, n);
            read += n;
        }

        Assert.Equal("world"u8.ToArray(), buffer);
        Assert.Equal(2, h.Device.ConnectionCount);
        await again.CloseAsync();
        await backGuest.CloseAsync();
        Assert.True(await UnixTestSockets.EventuallyAsync(() => h.Device.ConnectionCount == 0));
    }
}
