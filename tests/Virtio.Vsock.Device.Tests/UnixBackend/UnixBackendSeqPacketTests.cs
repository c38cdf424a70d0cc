using System.Net.Sockets;
using Virtio.Vsock.Backends.Unix;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.UnixBackend;

/// <summary>SEQPACKET over SOCK_SEQPACKET Unix sockets: message boundaries kept both ways, both connection directions.</summary>
public sealed class UnixBackendSeqPacketTests
{
    // Empty, tiny, page-sized, one over a page, exactly one TX packet, spanning two TX packets, a big one.
    private static readonly int[] Sizes = [1, 0, 100, 4096, 4097, 65536, 100_000, 3];

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public static TheoryData<GuestBufferLayout> Layouts => [GuestBufferLayout.Linear, GuestBufferLayout.Scattered];

    [Theory(Timeout = 30_000)]
    [MemberData(nameof(Layouts))]
    public async Task GuestInitiatedMessagesKeepTheirBoundariesBothWays(GuestBufferLayout layout)
    {
        await using var h = new UnixBackendHarness(guestOptions: new GuestSimulatorOptions { TxLayout = layout, RxLayout = layout == GuestBufferLayout.Linear ? layout : GuestBufferLayout.HeaderAndData });
        using Socket listener = h.ListenOnHostPort(8000, SocketType.Seqpacket);
        Task<Socket> accept = listener.AcceptAsync(Token).AsTask();
        GuestSocket guest = await h.Guest.ConnectAsync(8000, VsockType.SeqPacket, Token);
        using Socket host = await accept;
        Assert.True(UnixSocketIo.ConfigureForDataPath(host).IsOk);

        await ExchangeAsync(guest, host);
        await guest.CloseAsync();
        Assert.False(guest.WasReset);
    }

    [Fact(Timeout = 30_000)]
    public async Task HostInitiatedMessagesKeepTheirBoundariesBothWays()
    {
        await using var h = new UnixBackendHarness();
        using GuestListener listener = h.Guest.Listen(8001, VsockType.SeqPacket);
        Task<GuestSocket> accept = listener.AcceptAsync(Token).AsTask();
        (Socket host, uint localPort) = await h.ConnectToGuestSeqPacketAsync(8001, Token);
        using (host)
        {
            GuestSocket guest = await accept;
            Assert.Equal(VsockType.SeqPacket, guest.Type);
            Assert.Equal(localPort, guest.PeerPort);
            Assert.True(UnixSocketIo.ConfigureForDataPath(host).IsOk);
            await ExchangeAsync(guest, host);
            await guest.CloseAsync();
            Assert.False(guest.WasReset);
        }

        Assert.Equal(1, h.Backend.Counters.HostConnects);
    }

    [Fact(Timeout = 30_000)]
    public async Task AMessageOverTheLimitResetsTheConnection()
    {
        await using var h = new UnixBackendHarness(backendOptions: path => new UnixSocketBackendOptions { UdsPath = path, MaxSeqPacketMessageSize = 10_000 });
        using Socket listener = h.ListenOnHostPort(8002, SocketType.Seqpacket);
        Task<Socket> accept = listener.AcceptAsync(Token).AsTask();
        GuestSocket guest = await h.Guest.ConnectAsync(8002, VsockType.SeqPacket, Token);
        using Socket host = await accept;
        await guest.SendMessageAsync(new byte[20_000], cancellationToken: Token);
        await guest.Completion.WaitAsync(TimeSpan.FromSeconds(5), Token);
        Assert.True(guest.WasReset);
    }

    /// <summary>Guest to host, then host to guest: every message arrives whole and alone.</summary>
    private static async Task ExchangeAsync(GuestSocket guest, Socket host)
    {
        for (int i = 0; i < Sizes.Length; i++)
        {
            await guest.SendMessageAsync(Helpers.Pattern(Sizes[i], i), cancellationToken: Token);
        }

        for (int i = 0; i < Sizes.Length; i++)
        {
            Assert.Equal(Helpers.Pattern(Sizes[i], i), await HostIo.ReceiveMessageAsync(host, Token));
        }

        Task sends = Task.Run(async () =>
        {
            for (int i = 0; i < Sizes.Length; i++)
            {
                await HostIo.SendMessageAsync(host, Helpers.Pattern(Sizes[i], 100 + i), Token);
            }
        }, Token);
        for (int i = 0; i < Sizes.Length; i++)
        {
            Assert.Equal(Helpers.Pattern(Sizes[i], 100 + i), await HostIo.ReceiveMessageAsync(guest, Token));
        }

        await sends;
    }
}
