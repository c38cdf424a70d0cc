using Virtio.Vsock.Device.Backends.InProcess;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests;

/// <summary>SEQPACKET message boundaries (EOM) and records (EOR) end to end.</summary>
public sealed class SeqPacketTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task GuestMessagesKeepTheirBoundaries()
    {
        using var harness = new Harness(guestOptions: new GuestSimulatorOptions { MaxTxPayload = 4096 });
        using VsockListener listener = harness.Backend.Listen(400, VsockType.SeqPacket);
        GuestSocket guest = await harness.Guest.ConnectAsync(400, VsockType.SeqPacket, Token);
        VsockStream host = await listener.AcceptAsync(Token);
        int[] sizes = [1, 0, 100, 4096, 10_000, 3];
        for (int i = 0; i < sizes.Length; i++)
        {
            await guest.SendMessageAsync(Helpers.Pattern(sizes[i], i), endOfRecord: i == 3, Token);
        }

        for (int i = 0; i < sizes.Length; i++)
        {
            var message = new MemoryStream();
            var buffer = new byte[65536];
            while (true)
            {
                int n = await host.ReadAsync(buffer, Token);
                message.Write(buffer, 0, n);
                if (host.LastReadFlags != SeqPacketFlags.None)
                {
                    break;
                }
            }

            Assert.Equal(Helpers.Pattern(sizes[i], i), message.ToArray());
            Assert.Equal(i == 3, (host.LastReadFlags & SeqPacketFlags.EndOfRecord) != 0);
        }
    }

    [Fact]
    public async Task HostMessagesKeepTheirBoundaries()
    {
        using var harness = new Harness();
        using VsockListener listener = harness.Backend.Listen(401, VsockType.SeqPacket);
        GuestSocket guest = await harness.Guest.ConnectAsync(401, VsockType.SeqPacket, Token);
        VsockStream host = await listener.AcceptAsync(Token);
        int[] sizes = [5, 0, 9000, 1, 4096];
        for (int i = 0; i < sizes.Length; i++)
        {
            await host.WriteMessageAsync(Helpers.Pattern(sizes[i], 100 + i), endOfRecord: i == 2, Token);
        }

        for (int i = 0; i < sizes.Length; i++)
        {
            var message = new MemoryStream();
            var buffer = new byte[65536];
            SeqPacketFlags end;
            do
            {
                (int n, end) = await guest.ReceiveMessageAsync(buffer, Token);
                message.Write(buffer, 0, n);
            }
            while (end == SeqPacketFlags.None);
            Assert.Equal(Helpers.Pattern(sizes[i], 100 + i), message.ToArray());
            Assert.Equal(i == 2, (end & SeqPacketFlags.EndOfRecord) != 0);
        }
    }
}
