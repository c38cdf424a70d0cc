using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.Siblings;

/// <summary>SEQPACKET between guests: message and record boundaries survive, also when a message is split over many RX buffers.</summary>
public sealed class SiblingSeqPacketTests
{
    private static readonly int[] Sizes = [1, 0, 100, 999, 1000, 1001, 4096, 65536, 200_000, 3];

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static async Task SendAll(GuestSocket socket, int seedBase)
    {
        for (int i = 0; i < Sizes.Length; i++)
        {
            await socket.SendMessageAsync(Helpers.Pattern(Sizes[i], seedBase + i), endOfRecord: i % 3 == 2, Token);
        }
    }

    private static async Task ReceiveAll(GuestSocket socket, int seedBase)
    {
        var buffer = new byte[300_000];
        for (int i = 0; i < Sizes.Length; i++)
        {
            var message = new MemoryStream();
            SeqPacketFlags end;
            do
            {
                (int n, end) = await socket.ReceiveMessageAsync(buffer, Token);
                message.Write(buffer, 0, n);
            }
            while (end == SeqPacketFlags.None);
            Assert.Equal(Helpers.Pattern(Sizes[i], seedBase + i), message.ToArray());
            Assert.Equal(i % 3 == 2, (end & SeqPacketFlags.EndOfRecord) != 0);
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task MessagesKeepTheirBoundariesBothWays()
    {
        using var harness = new SiblingHarness();
        // B's RX buffers hold 1000 bytes: messages arrive in many pieces, EOM only on the last.
        SiblingVm a = harness.Add(3);
        SiblingVm b = harness.Add(4, guestOptions: new GuestSimulatorOptions { RxBufferSize = 1000, LogReceived = true });
        using GuestListener listener = b.Guest.Listen(5300, VsockType.SeqPacket);
        GuestSocket x = await a.Guest.ConnectToAsync(4, 5300, VsockType.SeqPacket, Token);
        GuestSocket y = await listener.AcceptAsync(Token);
        Assert.Equal(VsockType.SeqPacket, y.Type);

        await Task.WhenAll(SendAll(x, 100), ReceiveAll(y, 100), SendAll(y, 200), ReceiveAll(x, 200));

        // Every piece fits B's buffers; only message ends carry EOM.
        VsockHeader[] rw = [.. b.Guest.ReceivedLog.Where(h => h.Op == VsockOp.Rw)];
        Assert.All(rw, h => Assert.InRange(h.Len, 0u, 1000u));
        Assert.Equal(Sizes.Length, rw.Count(h => (h.Flags & (uint)SeqPacketFlags.EndOfMessage) != 0));
        Assert.All(rw, h => Assert.Equal(3UL, h.SrcCid));
        Assert.Equal(0, b.Guest.MalformedRxPackets);
        Assert.Equal(0, a.Guest.MalformedRxPackets);
    }

    [Fact(Timeout = 30_000)]
    public async Task SeqPacketToAGuestWithoutSeqPacketGetsRst()
    {
        using var harness = new SiblingHarness();
        SiblingVm a = harness.Add(3);
        SiblingVm b = harness.Add(4, guestOptions: new GuestSimulatorOptions { SeqPacket = false });
        var started = DateTime.UtcNow;
        var error = await Assert.ThrowsAsync<GuestSocketException>(() => a.Guest.ConnectToAsync(4, 5301, VsockType.SeqPacket, Token));
        Assert.Contains("refused", error.Message, StringComparison.Ordinal);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(1.9), "an RST, not the guest's 2 s connect timeout");
        await Harness.WaitUntil(() => a.Device.SiblingConnectionCount == 0 && b.Device.SiblingConnectionCount == 0);
    }
}
