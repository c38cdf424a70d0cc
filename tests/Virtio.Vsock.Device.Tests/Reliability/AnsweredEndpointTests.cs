using System.Net.Sockets;
using Virtio.Vsock.Device.Tests.Unix;
using Virtio.Vsock.Device.Tests.UnixBackend;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.Reliability;

/// <summary>
/// A guest that sends REQUEST and, in the same TX batch, another packet that resets the connection while
/// the backend's answer is still parked (RX starved, so the RST waits): the host endpoint the backend
/// answered with must be closed, never leaked (issue 10, defect 1).
/// </summary>
public sealed class AnsweredEndpointTests
{
    private const uint GuestPort = 9100;
    private const uint HostPort = 6200;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public static TheoryData<string> Resetters => ["RW", "SHUTDOWN", "RESPONSE", "unknown op", "type mismatch"];

    private static VsockHeader Header(VsockOp op, uint srcPort, VsockType type = VsockType.Stream, uint flags = 0) => new()
    {
        SrcCid = 3,
        DstCid = VsockCid.Host,
        SrcPort = srcPort,
        DstPort = HostPort,
        Type = type,
        Op = op,
        Flags = flags,
        BufAlloc = 65536,
    };

    private static (VsockHeader, byte[]) Resetter(string kind, uint srcPort) => kind switch
    {
        "RW" => (Header(VsockOp.Rw, srcPort), new byte[16]),
        "SHUTDOWN" => (Header(VsockOp.Shutdown, srcPort, flags: (uint)ShutdownFlags.Both), []),
        "RESPONSE" => (Header(VsockOp.Response, srcPort), []),
        "unknown op" => (Header((VsockOp)99, srcPort), []),
        "type mismatch" => (Header(VsockOp.Rw, srcPort, VsockType.SeqPacket), new byte[8]),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    [Theory]
    [MemberData(nameof(Resetters))]
    public async Task InProcessStreamOfAResetAcceptIsAborted(string kind)
    {
        using var harness = new Harness(new VsockDeviceOptions { MaxPacketData = 64 * 1024 }, new GuestSimulatorOptions());
        using var listener = harness.Backend.Listen(HostPort);
        harness.Guest.ClaimRawPort(GuestPort);
        harness.Guest.RxPaused = true;
        harness.Guest.SendRawBatch((Header(VsockOp.Request, GuestPort), []), Resetter(kind, GuestPort));

        using var stream = await listener.AcceptAsync(Token).AsTask().WaitAsync(TimeSpan.FromSeconds(20), Token);
        var buffer = new byte[16];
        int read = -1;
        Exception? ended = await Record.ExceptionAsync(async () => read = await stream.ReadAsync(buffer, Token).AsTask().WaitAsync(TimeSpan.FromSeconds(20), Token));
        Assert.False(ended is TimeoutException, "the host stream of a connection reset while being accepted was never closed");
        Assert.True(ended is IOException || (ended is null && read == 0), $"expected end of stream or a reset, got {ended?.GetType().Name ?? read.ToString(System.Globalization.CultureInfo.InvariantCulture)}");

        harness.Guest.RxPaused = false;
        VsockHeader? rst = await harness.Guest.WaitRawAsync(h => h.Op == VsockOp.Rst && h.DstPort == GuestPort, TimeSpan.FromSeconds(20));
        Assert.NotNull(rst);
        await Harness.WaitUntil(() => harness.Device.ConnectionCount == 0, 20_000, "the reset connection is gone");
    }

    [Fact]
    public async Task UnixBackendClosesEveryHostSocketOfResetAccepts()
    {
        const int Rounds = 100;
        await using var harness = new UnixBackendHarness();
        using Socket listener = harness.ListenOnHostPort(HostPort, backlog: Rounds + 16);
        int fdsBefore = OpenFileDescriptors();
        harness.Guest.RxPaused = true;
        var accepted = new List<Socket>();
        try
        {
            for (int i = 0; i < Rounds; i++)
            {
                uint port = GuestPort + 1 + (uint)i;
                harness.Guest.ClaimRawPort(port);
                harness.Guest.SendRawBatch((Header(VsockOp.Request, port), []), Resetter(i % 2 == 0 ? "RW" : "SHUTDOWN", port));
                accepted.Add(await listener.AcceptAsync(Token).AsTask().WaitAsync(TimeSpan.FromSeconds(20), Token));
            }

            // Every host socket the backend opened must be closed by the device: its peer reads end of stream.
            foreach (Socket socket in accepted)
            {
                byte[] rest = await UnixTestSockets.ReadToEndAsync(socket, timeoutMs: 20_000);
                Assert.Empty(rest);
            }
        }
        finally
        {
            foreach (Socket socket in accepted)
            {
                socket.Dispose();
            }
        }

        harness.Guest.RxPaused = false;
        await Harness.WaitUntil(() => harness.Device.ConnectionCount == 0, 30_000, "every reset connection is gone");
        await Harness.WaitUntil(() => OpenFileDescriptors() <= fdsBefore + 4, 30_000, $"open fds back to {fdsBefore} (now {OpenFileDescriptors()})");
    }

    [Fact]
    public async Task CreditRequestBeforeTheResponseIsNotAnsweredAheadOfIt()
    {
        using var harness = new Harness();
        using var listener = harness.Backend.Listen(HostPort);
        harness.Guest.ClaimRawPort(GuestPort);
        harness.Guest.SendRawBatch((Header(VsockOp.Request, GuestPort), []), (Header(VsockOp.CreditRequest, GuestPort), []));
        VsockHeader? first = await harness.Guest.WaitRawAsync(h => h.DstPort == GuestPort, TimeSpan.FromSeconds(20));
        Assert.NotNull(first);
        Assert.Equal(VsockOp.Response, first.Value.Op);

        // Sentinel: once the connection is up, a CREDIT_REQUEST is answered; nothing came between.
        harness.Guest.SendRaw(Header(VsockOp.CreditRequest, GuestPort));
        Assert.NotNull(await harness.Guest.WaitRawAsync(h => h.DstPort == GuestPort && h.Op == VsockOp.CreditUpdate, TimeSpan.FromSeconds(20)));
        VsockHeader[] received = harness.Guest.RawReceived.Where(h => h.DstPort == GuestPort).ToArray();
        Assert.Equal([VsockOp.Response, VsockOp.CreditUpdate], received.Select(h => h.Op));
    }

    private static int OpenFileDescriptors() => Directory.GetFiles("/proc/self/fd").Length;
}
