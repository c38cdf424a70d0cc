using System.Net.Sockets;
using System.Text;
using Virtio.Vsock.Backends.Unix;
using Virtio.Vsock.Device.Tests.Unix;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.UnixBackend;

/// <summary>Start, dispose, device reset, reply ordering and idle cost of the Unix socket backend.</summary>
public sealed class UnixBackendLifecycleTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact(Timeout = 30_000)]
    public async Task DisposeAsyncClosesEverySocketAndRemovesTheSocketFiles()
    {
        await using var h = new UnixBackendHarness();
        using GuestListener guestListener = h.Guest.Listen(9000);
        using Socket hostListener = h.ListenOnHostPort(9001);
        var hostSockets = new List<Socket>();
        var guestSockets = new List<GuestSocket>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                (Socket host, _) = await h.ConnectToGuestAsync(9000, token: Token);
                hostSockets.Add(host);
                guestSockets.Add(await guestListener.AcceptAsync(Token));

                GuestSocket guest = await h.Guest.ConnectAsync(9001, cancellationToken: Token);
                guestSockets.Add(guest);
                hostSockets.Add(await hostListener.AcceptAsync(Token));
            }

            // Prove every connection carries data before the dispose.
            foreach (GuestSocket guest in guestSockets)
            {
                await guest.SendAsync("x"u8.ToArray(), Token);
            }

            foreach (Socket host in hostSockets)
            {
                Assert.Equal("x"u8.ToArray(), await UnixTestSockets.ReadExactlyOrEofAsync(host, 1));
            }

            // A handshake in progress, and a completed one whose guest never answers (raw port: no RST).
            Socket halfLine = await UnixTestSockets.ConnectAsync(h.UdsPath);
            hostSockets.Add(halfLine);
            await halfLine.SendAsync("CONN"u8.ToArray(), SocketFlags.None, Token);
            h.Guest.ClaimRawPort(9002);
            Socket waiting = await UnixTestSockets.ConnectAsync(h.UdsPath);
            hostSockets.Add(waiting);
            await waiting.SendAsync("CONNECT 9002\n"u8.ToArray(), SocketFlags.None, Token);
            Assert.True(await UnixTestSockets.EventuallyAsync(() => h.Backend.Counters.PendingHostConnects == 1));
            Assert.Equal(7, h.Backend.Counters.OpenSockets);

            await h.DisposeBackendAsync();

            foreach (Socket host in hostSockets)
            {
                // End of stream (or reset) at once: nothing more comes.
                Assert.Empty(await UnixTestSockets.ReadToEndAsync(host, 2000));
            }

            Assert.False(File.Exists(h.UdsPath));
            Assert.False(File.Exists(h.SeqPacketPath));
            Assert.Equal(0, h.Backend.Counters.OpenSockets);
            Assert.Equal(0, h.Backend.Counters.PendingHostConnects);

            // The guest side learns too: every connection is reset.
            foreach (GuestSocket guest in guestSockets)
            {
                await guest.Completion.WaitAsync(TimeSpan.FromSeconds(5), Token);
                Assert.True(guest.WasReset);
            }

            // Guest connects after the dispose are refused.
            await Assert.ThrowsAsync<GuestSocketException>(() => h.Guest.ConnectAsync(9001, cancellationToken: Token));
            await h.Backend.DisposeAsync();
        }
        finally
        {
            hostSockets.ForEach(s => s.Dispose());
        }
    }

    [Fact(Timeout = 20_000)]
    public async Task DeviceResetClosesTheHostSockets()
    {
        await using var h = new UnixBackendHarness();
        using Socket hostListener = h.ListenOnHostPort(9010);
        Task<Socket> accept = hostListener.AcceptAsync(Token).AsTask();
        await h.Guest.ConnectAsync(9010, cancellationToken: Token);
        using Socket host = await accept;
        h.Device.Reset();
        Assert.Empty(await UnixTestSockets.ReadToEndAsync(host, 2000));
        Assert.True(await UnixTestSockets.EventuallyAsync(() => h.Backend.Counters.OpenSockets == 0));
    }

    [Fact(Timeout = 20_000)]
    public async Task GuestDataSentRightAfterAcceptingComesAfterTheOkLine()
    {
        const int Count = 30;
        await using var h = new UnixBackendHarness();
        using GuestListener listener = h.Guest.Listen(9020);
        Task guests = Task.Run(async () =>
        {
            for (int i = 0; i < Count; i++)
            {
                GuestSocket guest = await listener.AcceptAsync(Token);
                await guest.SendAsync("hello from the guest"u8.ToArray(), Token);
                guest.Shutdown(ShutdownFlags.Send);
            }
        }, Token);

        await Task.WhenAll(Enumerable.Range(0, Count).Select(_ => Task.Run(async () =>
        {
            using Socket host = await UnixTestSockets.ConnectAsync(h.UdsPath);
            await host.SendAsync("CONNECT 9020\n"u8.ToArray(), SocketFlags.None, Token);
            string all = Encoding.ASCII.GetString(await UnixTestSockets.ReadToEndAsync(host));
            Assert.Matches(@"^OK \d+\nhello from the guest$", all);
        }, Token)));
        await guests;
    }

    [Fact(Timeout = 20_000)]
    public async Task AGuestThatClosesRightAfterAcceptingGivesTheHostOkThenEndOfStream()
    {
        const int Count = 30;
        await using var h = new UnixBackendHarness();
        using GuestListener listener = h.Guest.Listen(9021);
        Task guests = Task.Run(async () =>
        {
            var closes = new List<Task>();
            for (int i = 0; i < Count; i++)
            {
                closes.Add((await listener.AcceptAsync(Token)).CloseAsync());
            }

            await Task.WhenAll(closes);
        }, Token);

        await Task.WhenAll(Enumerable.Range(0, Count).Select(_ => Task.Run(async () =>
        {
            using Socket host = await UnixTestSockets.ConnectAsync(h.UdsPath);
            await host.SendAsync("CONNECT 9021\n"u8.ToArray(), SocketFlags.None, Token);
            Assert.Matches(@"^OK \d+\n$", Encoding.ASCII.GetString(await UnixTestSockets.ReadToEndAsync(host)));
        }, Token)));
        await guests;
        Assert.Equal(Count, h.Backend.Counters.HostConnects);
    }

    [Fact(Timeout = 20_000)]
    public async Task StartRefusesALivePathAndTwoStarts()
    {
        await using var h = new UnixBackendHarness();
        Assert.Throws<InvalidOperationException>(h.Backend.Start);
        await using var second = new UnixSocketBackend(new UnixSocketBackendOptions { UdsPath = h.UdsPath });
        Assert.Throws<IOException>(second.Start);
        Assert.True(File.Exists(h.UdsPath));

        await h.DisposeBackendAsync();
        Assert.Throws<ObjectDisposedException>(h.Backend.Start);

        // The path is free again: a new backend takes it over.
        await using var third = new UnixSocketBackend(new UnixSocketBackendOptions { UdsPath = h.UdsPath, SeqPacketListener = false });
        third.Start();
        Assert.True(File.Exists(h.UdsPath));
        Assert.False(File.Exists(h.SeqPacketPath));
    }

    [Fact]
    public void OptionsAreValidated()
    {
        Assert.Throws<ArgumentException>(() => new UnixSocketBackend(new UnixSocketBackendOptions { UdsPath = "" }));
        Assert.Throws<ArgumentException>(() => new UnixSocketBackend(new UnixSocketBackendOptions { UdsPath = "/tmp/" + new string('a', 100) }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new UnixSocketBackend(new UnixSocketBackendOptions { UdsPath = "/tmp/x", MaxPendingHostConnects = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new UnixSocketBackend(new UnixSocketBackendOptions { UdsPath = "/tmp/x", GuestConnectTimeout = TimeSpan.Zero }));
    }

    [Fact(Timeout = 20_000)]
    public async Task IdleConnectionsCostNoLoopTurns()
    {
        const int PerDirection = 20;
        await using var h = new UnixBackendHarness();
        using GuestListener guestListener = h.Guest.Listen(9030);
        using Socket hostListener = h.ListenOnHostPort(9031);
        var hostSockets = new List<Socket>();
        try
        {
            for (int i = 0; i < PerDirection; i++)
            {
                (Socket host, _) = await h.ConnectToGuestAsync(9030, "a"u8.ToArray(), Token);
                hostSockets.Add(host);
                GuestSocket accepted = await guestListener.AcceptAsync(Token);
                Assert.Equal("a"u8.ToArray(), await Helpers.ReadExactly(accepted, 1, Token));

                GuestSocket guest = await h.Guest.ConnectAsync(9031, cancellationToken: Token);
                await guest.SendAsync("b"u8.ToArray(), Token);
                Socket server = await hostListener.AcceptAsync(Token);
                hostSockets.Add(server);
                Assert.Equal("b"u8.ToArray(), await UnixTestSockets.ReadExactlyOrEofAsync(server, 1));
            }

            // Settle (the set-up's last credit updates and buffer refills die out; a polling device never settles and
            // fails at the deadline), then measure a window: the verdict is the loop-turn counter, not wall time.
            await Harness.WaitUntil(() => h.Guest.OutstandingTxChains == 0, what: "guest TX chains returned");
            long turns = await Harness.WaitQuiet(() => h.Device.Metrics.LoopTurns, TimeSpan.FromMilliseconds(200), "loop turns after set-up");
            await Harness.AssertGrowsAtMost(() => h.Device.Metrics.LoopTurns, turns, 2, TimeSpan.FromMilliseconds(500), $"loop turns while {2 * PerDirection} connections were idle");
        }
        finally
        {
            hostSockets.ForEach(s => s.Dispose());
        }
    }
}
