using System.Net.Sockets;
using Virtio.Vsock.Device.Tests.Unix;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.UnixBackend;

/// <summary>Half-close both ways: one side stops sending, the other can still send.</summary>
public sealed class UnixBackendHalfCloseTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact(Timeout = 20_000)]
    public async Task HostShutdownSendGivesTheGuestShutdownSendAndTheGuestCanStillSend()
    {
        await using var h = new UnixBackendHarness();
        using Socket listener = h.ListenOnHostPort(6100);
        Task<Socket> accept = listener.AcceptAsync(Token).AsTask();
        GuestSocket guest = await h.Guest.ConnectAsync(6100, cancellationToken: Token);
        using Socket host = await accept;

        await host.SendAsync("request"u8.ToArray(), SocketFlags.None, Token);
        host.Shutdown(SocketShutdown.Send);
        Assert.Equal("request"u8.ToArray(), await Helpers.ReadExactly(guest, 7, Token));
        Assert.Equal(0, await guest.ReceiveAsync(new byte[16], Token));
        Assert.Equal(ShutdownFlags.Send, guest.PeerShutdown);

        // The guest still sends, and the host still receives, after the host's half-close.
        byte[] reply = Helpers.Pattern(150_000, 3);
        await guest.SendAsync(reply, Token);
        Assert.Equal(reply, await UnixTestSockets.ReadExactlyOrEofAsync(host, reply.Length, 10_000));
        await guest.CloseAsync();
        Assert.Empty(await UnixTestSockets.ReadToEndAsync(host));
        Assert.False(guest.WasReset);
    }

    [Fact(Timeout = 20_000)]
    public async Task GuestShutdownSendGivesTheHostEndOfStreamAndTheHostCanStillSend()
    {
        await using var h = new UnixBackendHarness();
        using GuestListener listener = h.Guest.Listen(6101);
        Task<GuestSocket> accept = listener.AcceptAsync(Token).AsTask();
        (Socket host, _) = await h.ConnectToGuestAsync(6101, token: Token);
        using (host)
        {
            GuestSocket guest = await accept;
            await guest.SendAsync("request"u8.ToArray(), Token);
            guest.Shutdown(ShutdownFlags.Send);

            // The host reads the data then end of stream ...
            Assert.Equal("request"u8.ToArray(), await UnixTestSockets.ReadToEndAsync(host));

            // ... and can still send; the guest reads it.
            byte[] reply = Helpers.Pattern(150_000, 4);
            await host.SendAsync(reply, SocketFlags.None, Token);
            Assert.Equal(reply, await Helpers.ReadExactly(guest, reply.Length, Token));
            host.Shutdown(SocketShutdown.Send);
            Assert.Equal(0, await guest.ReceiveAsync(new byte[16], Token));

            // Both halves closed: the connection ends in order.
            await guest.Completion.WaitAsync(TimeSpan.FromSeconds(5), Token);
            Assert.False(guest.WasReset);
        }
    }

    [Fact(Timeout = 20_000)]
    public async Task GuestShutdownSendRightAfterConnectingReachesTheHostAfterTheOkReply()
    {
        await using var h = new UnixBackendHarness();
        using GuestListener listener = h.Guest.Listen(6102);
        Task guestSide = Task.Run(async () =>
        {
            GuestSocket guest = await listener.AcceptAsync(Token);
            await guest.SendAsync("hi"u8.ToArray(), Token);
            guest.Shutdown(ShutdownFlags.Send);
        }, Token);

        (Socket host, _) = await h.ConnectToGuestAsync(6102, token: Token);
        using (host)
        {
            await guestSide;
            Assert.Equal("hi"u8.ToArray(), await UnixTestSockets.ReadToEndAsync(host));
        }
    }
    [Fact(Timeout = 30_000)]
    public async Task GuestShutdownReceiveFailsTheHostsSendsEvenWhenTheHostFilledItsSocketFirst()
    {
        // The guest advertises 4 KiB and never reads, so the device stops reading the host socket and the host
        // fills it. Only then does the guest shut down reading: the host must see EPIPE, not a socket that stays
        // full (and a blocked send) until the guest closes.
        await using var h = new UnixBackendHarness(guestOptions: new GuestSimulatorOptions { BufferSize = 4096 });
        using GuestListener listener = h.Guest.Listen(6103);
        Task<GuestSocket> accept = listener.AcceptAsync(Token).AsTask();
        (Socket host, _) = await h.ConnectToGuestAsync(6103, token: Token);
        using (host)
        {
            GuestSocket guest = await accept;
            host.Blocking = false;
            byte[] chunk = Helpers.Pattern(1024, 5);
            long queued = 0;
            SocketError error = SocketError.Success;
            for (int i = 0; i < 100_000 && error == SocketError.Success; i++)
            {
                queued += Math.Max(0, host.Send(chunk, 0, chunk.Length, SocketFlags.None, out error));
            }

            Assert.Equal(SocketError.WouldBlock, error);
            Assert.True(queued > 4096, $"the host queued only {queued} bytes");

            guest.Shutdown(ShutdownFlags.Receive);

            // The device drops what the guest will never read, so the host's socket turns writable and its next send fails.
            Assert.True(host.Poll(TimeSpan.FromSeconds(10), SelectMode.SelectWrite), "the host's socket stayed full after the guest's SHUT_RD");
            host.Send(chunk, 0, chunk.Length, SocketFlags.None, out error);
            Assert.Equal(SocketError.Shutdown, error);
            Assert.False(guest.WasReset);
        }
    }
}
