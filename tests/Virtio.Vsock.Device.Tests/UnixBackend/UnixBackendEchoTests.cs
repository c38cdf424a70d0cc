using System.Net.Sockets;
using Virtio.Vsock.Device.Tests.Unix;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.UnixBackend;

/// <summary>Echo both ways through a real device and the Unix socket backend over real Unix sockets.</summary>
public sealed class UnixBackendEchoTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact(Timeout = 20_000)]
    public async Task HostConnectWithDataInTheSameWriteIsEchoedByTheGuest()
    {
        await using var h = new UnixBackendHarness();
        using GuestListener listener = h.Guest.Listen(5000);
        var guestSide = new TaskCompletionSource<GuestSocket>();
        Task echo = Task.Run(async () =>
        {
            GuestSocket socket = await listener.AcceptAsync(Token);
            guestSide.SetResult(socket);
            await HostIo.EchoAsync(socket, Token);
        }, Token);

        byte[] early = "early bytes, in the same write as the CONNECT line"u8.ToArray();
        (Socket host, uint localPort) = await h.ConnectToGuestAsync(5000, early, Token);
        using (host)
        {
            // The bytes after '\n' reach the guest first, before anything sent later.
            Assert.Equal(early, await UnixTestSockets.ReadExactlyOrEofAsync(host, early.Length));
            GuestSocket guest = await guestSide.Task;
            Assert.Equal(localPort, guest.PeerPort);

            // Below the device's 64 KiB buf_alloc: the simulator does not resume sending when credit
            // arrives on an RW packet (see UnixBackendBulkTests), so echoes stay within one window.
            byte[] more = Helpers.Pattern(60_000, 1);
            Task<byte[]> back = UnixTestSockets.ReadExactlyOrEofAsync(host, more.Length, 10_000);
            await host.SendAsync(more, SocketFlags.None, Token);
            Assert.Equal(more, await back);

            host.Shutdown(SocketShutdown.Send);
            Assert.Empty(await UnixTestSockets.ReadToEndAsync(host));
            await echo;
            Assert.False(guest.WasReset);
        }

        Assert.Equal(1, h.Backend.Counters.HostConnects);
        Assert.True(await UnixTestSockets.EventuallyAsync(() => h.Backend.Counters.OpenSockets == 0));
    }

    [Fact(Timeout = 20_000)]
    public async Task HostConnectLineAndDataInSeparateWrites()
    {
        await using var h = new UnixBackendHarness();
        using GuestListener listener = h.Guest.Listen(5001);
        Task echo = Task.Run(async () => await HostIo.EchoAsync(await listener.AcceptAsync(Token), Token), Token);
        (Socket host, _) = await h.ConnectToGuestAsync(5001, token: Token);
        using (host)
        {
            await host.SendAsync("ping"u8.ToArray(), SocketFlags.None, Token);
            Assert.Equal("ping"u8.ToArray(), await UnixTestSockets.ReadExactlyOrEofAsync(host, 4));
            host.Shutdown(SocketShutdown.Send);
            Assert.Empty(await UnixTestSockets.ReadToEndAsync(host));
            await echo;
        }
    }

    [Fact(Timeout = 20_000)]
    public async Task GuestConnectsToHostPortAndTheHostEchoes()
    {
        await using var h = new UnixBackendHarness();
        using Socket listener = h.ListenOnHostPort(6000);
        Task server = Task.Run(async () =>
        {
            using Socket accepted = await listener.AcceptAsync(Token);
            await HostIo.EchoAsync(accepted, Token);
            Assert.Empty(await UnixTestSockets.ReadToEndAsync(accepted));
        }, Token);

        GuestSocket guest = await h.Guest.ConnectAsync(6000, cancellationToken: Token);
        byte[] data = Helpers.Pattern(60_000, 2);
        Task send = guest.SendAsync(data, Token);
        Assert.Equal(data, await Helpers.ReadExactly(guest, data.Length, Token));
        await send;
        guest.Shutdown(ShutdownFlags.Send);
        Assert.Equal(0, await guest.ReceiveAsync(new byte[16], Token));
        await guest.CloseAsync();
        await server;
        Assert.False(guest.WasReset);
        Assert.Equal(1, h.Backend.Counters.GuestConnects);
        Assert.True(await UnixTestSockets.EventuallyAsync(() => h.Backend.Counters.OpenSockets == 0));
    }

    [Fact(Timeout = 20_000)]
    public async Task HostCloseGivesTheGuestEndOfStreamAndAnOrderlyClose()
    {
        await using var h = new UnixBackendHarness();
        using Socket listener = h.ListenOnHostPort(6001);
        Task<Socket> accept = listener.AcceptAsync(Token).AsTask();
        GuestSocket guest = await h.Guest.ConnectAsync(6001, cancellationToken: Token);
        using (Socket host = await accept)
        {
            await host.SendAsync("bye"u8.ToArray(), SocketFlags.None, Token);
        }

        Assert.Equal("bye"u8.ToArray(), await Helpers.ReadExactly(guest, 3, Token));
        Assert.Equal(0, await guest.ReceiveAsync(new byte[16], Token));
        await guest.Completion.WaitAsync(TimeSpan.FromSeconds(5), Token);
        Assert.False(guest.WasReset);
        Assert.Equal(ShutdownFlags.Both, guest.PeerShutdown);
    }
}
