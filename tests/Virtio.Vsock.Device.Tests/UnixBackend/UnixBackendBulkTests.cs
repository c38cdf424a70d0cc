using System.Diagnostics;
using System.Net.Sockets;
using Virtio.Vsock.Device.Tests.Unix;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.UnixBackend;

/// <summary>Large transfers with checksums and backpressure, many concurrent connections.</summary>
public sealed class UnixBackendBulkTests
{
    private const long Size = 64L * 1024 * 1024;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <remarks>
    /// The two directions run one after the other. Run together, they stall in the guest simulator, not
    /// in the device or this backend: <c>GuestSocket.OnPacket</c> reschedules the guest's sending only
    /// for RESPONSE and CREDIT_UPDATE, so credit the device returns on an RW packet (every packet carries
    /// <c>fwd_cnt</c>, and the device rightly sends no separate CREDIT_UPDATE then) never wakes a guest
    /// sender that ran out of credit. Linux wakes writers on every packet that frees credit.
    /// </remarks>
    [Theory(Timeout = 120_000)]
    [InlineData(GuestBufferLayout.Linear, GuestBufferLayout.Linear)]
    [InlineData(GuestBufferLayout.Scattered, GuestBufferLayout.HeaderAndData)]
    public async Task Transfer64MiBEachWayWithCrcAndBackpressure(GuestBufferLayout txLayout, GuestBufferLayout rxLayout)
    {
        await using var h = new UnixBackendHarness(guestOptions: new GuestSimulatorOptions { TxLayout = txLayout, RxLayout = rxLayout });
        using Socket listener = h.ListenOnHostPort(6200);
        Task<Socket> accept = listener.AcceptAsync(Token).AsTask();
        GuestSocket guest = await h.Guest.ConnectAsync(6200, cancellationToken: Token);
        using Socket host = await accept;

        // Guest to host; the host reader starts late and pauses midway, so the guest stalls on credit.
        var watch = Stopwatch.StartNew();
        Task<(long, uint)> hostReceives = Task.Run(() => ReceiveWithPausesAsync(
            m => host.ReceiveAsync(m, SocketFlags.None, Token).AsTask(),
            () => seen => h.Device.Metrics.TxBytes - seen >= h.DeviceOptions.BufferSize), Token); // a buf_alloc's worth backlogged host-side
        uint guestCrc = await SendUnlessReaderFailed(Helpers.SendPattern(m => guest.SendAsync(m, Token), Size, 21), hostReceives);
        guest.Shutdown(ShutdownFlags.Send);
        (long hostCount, uint hostReceivedCrc) = await hostReceives;
        long guestToHostMs = watch.ElapsedMilliseconds;
        Assert.Equal(Size, hostCount);
        Assert.Equal(guestCrc, hostReceivedCrc);

        // Host to guest (after the guest's half-close); the guest reader starts late and pauses midway.
        watch.Restart();
        Task<(long, uint)> guestReceives = Task.Run(() => ReceiveWithPausesAsync(
            m => guest.ReceiveAsync(m, Token),
            // The guest's buffer is full to within the device's minimum chunk (4 KiB): the device stalls on credit.
            // A state, not an event counted from a baseline, so it cannot be missed however late the reader starts.
            () => _ => guest.BufferedReceiveBytes > guest.BufAlloc - 4096), Token);
        uint hostCrc = await SendUnlessReaderFailed(Helpers.SendPattern(async m => await host.SendAsync(m, SocketFlags.None, Token), Size, 22), guestReceives);
        host.Shutdown(SocketShutdown.Send);
        (long guestCount, uint guestReceivedCrc) = await guestReceives;
        long hostToGuestMs = watch.ElapsedMilliseconds;
        Assert.Equal(Size, guestCount);
        Assert.Equal(hostCrc, guestReceivedCrc);

        Assert.Equal(0, guest.CreditViolations);
        Assert.Equal(0, h.Device.Metrics.CreditViolations);
        Assert.Equal(0, h.Guest.MalformedRxPackets);
        await guest.Completion.WaitAsync(TimeSpan.FromSeconds(5), Token);
        Assert.False(guest.WasReset);
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"{txLayout}/{rxLayout}: {Size >> 20} MiB guest->host in {guestToHostMs} ms, host->guest in {hostToGuestMs} ms " +
            $"(each incl. two reader pauses until the writer was held back); credit stalls {h.Device.Metrics.CreditStalls}, credit updates {h.Device.Metrics.CreditUpdatesSent}");
    }

    /// <summary>The sender's result; if the reader fails first (a pause condition missed its deadline), its error.</summary>
    private static async Task<uint> SendUnlessReaderFailed(Task<uint> send, Task reader)
    {
        if (await Task.WhenAny(send, reader) == reader && reader.IsFaulted)
        {
            await reader;
        }

        return await send;
    }

    /// <summary>
    /// Reads to end of stream with a CRC, starting late and pausing halfway: each pause lasts until
    /// the condition <paramref name="pauseUntil"/> makes at its start (given the bytes read so far) says backpressure reached the writer, so the
    /// transfer really stalls on credit however fast or slow the machine is.
    /// </summary>
    private static async Task<(long Count, uint Crc)> ReceiveWithPausesAsync(Func<Memory<byte>, Task<int>> read, Func<Func<long, bool>> pauseUntil)
    {
        long seen = 0;
        Func<long, bool> writerHeldBack = pauseUntil();
        await Harness.WaitUntil(() => writerHeldBack(seen), what: "writer held back before the reader starts");
        bool paused = false;
        return await Helpers.ReceiveAndHash(async m =>
        {
            if (!paused && seen > Size / 2)
            {
                paused = true;
                writerHeldBack = pauseUntil();
                await Harness.WaitUntil(() => writerHeldBack(seen), what: "writer held back during the reader's pause");
            }

            int n = await read(m);
            seen += n;
            return n;
        });
    }

    [Fact(Timeout = 60_000)]
    public async Task TwoHundredConcurrentConnectionsBothWaysEachEcho()
    {
        const int PerDirection = 100;
        await using var h = new UnixBackendHarness();
        using Socket hostListener = h.ListenOnHostPort(6300);
        using GuestListener guestListener = h.Guest.Listen(6301);

        Task hostServer = Task.Run(async () =>
        {
            var echoes = new List<Task>();
            for (int i = 0; i < PerDirection; i++)
            {
                Socket accepted = await hostListener.AcceptAsync(Token);
                echoes.Add(Task.Run(async () =>
                {
                    using (accepted)
                    {
                        await HostIo.EchoAsync(accepted, Token);
                    }
                }, Token));
            }

            await Task.WhenAll(echoes);
        }, Token);
        Task guestServer = Task.Run(async () =>
        {
            var echoes = new List<Task>();
            for (int i = 0; i < PerDirection; i++)
            {
                GuestSocket accepted = await guestListener.AcceptAsync(Token);
                echoes.Add(Task.Run(() => HostIo.EchoAsync(accepted, Token), Token));
            }

            await Task.WhenAll(echoes);
        }, Token);

        Task[] guestClients = Enumerable.Range(0, PerDirection).Select(i => Task.Run(async () =>
        {
            GuestSocket socket = await h.Guest.ConnectAsync(6300, cancellationToken: Token);
            byte[] data = Helpers.Pattern(20_000 + i, i);
            Task send = socket.SendAsync(data, Token);
            Assert.Equal(data, await Helpers.ReadExactly(socket, data.Length, Token));
            await send;
            socket.Shutdown(ShutdownFlags.Send);
            Assert.Equal(0, await socket.ReceiveAsync(new byte[1], Token));
            await socket.Completion.WaitAsync(TimeSpan.FromSeconds(10), Token);
            Assert.False(socket.WasReset);
        }, Token)).ToArray();
        Task[] hostClients = Enumerable.Range(0, PerDirection).Select(i => Task.Run(async () =>
        {
            byte[] data = Helpers.Pattern(20_000 + i, 1000 + i);
            (Socket socket, _) = await h.ConnectToGuestAsync(6301, data.AsMemory(0, 10), Token);
            using (socket)
            {
                Task<byte[]> back = UnixTestSockets.ReadExactlyOrEofAsync(socket, data.Length, 30_000);
                await socket.SendAsync(data.AsMemory(10), SocketFlags.None, Token);
                Assert.Equal(data, await back);
                socket.Shutdown(SocketShutdown.Send);
                Assert.Empty(await UnixTestSockets.ReadToEndAsync(socket, 30_000));
            }
        }, Token)).ToArray();

        await Task.WhenAll([.. guestClients, .. hostClients, hostServer, guestServer]);
        Assert.Equal(PerDirection, h.Backend.Counters.GuestConnects);
        Assert.Equal(PerDirection, h.Backend.Counters.HostConnects);
        Assert.True(await UnixTestSockets.EventuallyAsync(() => h.Backend.Counters.OpenSockets == 0 && h.Device.ConnectionCount == 0));
    }
}
