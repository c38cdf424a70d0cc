using System.Net.Sockets;
using System.Text;
using Virtio.Vsock.Backends.Unix;
using Virtio.Vsock.Device.Tests.Unix;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.UnixBackend;

/// <summary>
/// The Unix backend's connection set-up on the device loop: host connections are accepted, read and handed to the
/// device's connect by the loop thread (waiting in the backlog until a device attaches), and a guest connect that
/// meets a full host backlog is retried on the loop's timers until the host program makes room.
/// </summary>
public sealed class UnixBackendLoopTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact(Timeout = 30_000)]
    public async Task Host_connections_made_before_the_device_attaches_wait_then_reach_its_connect_on_the_loop()
    {
        using var sockets = new UnixTestSockets();
        using var loop = new TestLoop();
        string uds = sockets.NewPath("early");
        await using var backend = new UnixSocketBackend(new UnixSocketBackendOptions { UdsPath = uds });
        backend.Start();

        // No device yet: the connection waits in the backlog with its line unread.
        using Socket host = await UnixTestSockets.ConnectAsync(uds);
        await host.SendAsync("CONNECT 5000\nfirst"u8.ToArray(), SocketFlags.None, Token);
        Assert.Equal(0, backend.Counters.StreamListener.Accepted);

        var device = new FakeHost(loop);
        ((IVsockBackend)backend).Attach(device);
        Assert.Equal("OK 4242", await UnixBackendHarness.ReadLineAsync(host, Token));
        Assert.True(device.Calls.TryTake(out (uint Port, bool OnLoop) call, TimeSpan.FromSeconds(20)), "the device's connect was not called within 20 s");
        Assert.Equal(5000u, call.Port);
        Assert.True(call.OnLoop, "the device's connect was called off the device loop");
        Assert.True(await UnixTestSockets.EventuallyAsync(() => backend.Counters.HostConnects == 1), "the host connect was not counted within 20 s");
    }

    [Fact(Timeout = 30_000)]
    public async Task A_guest_connect_to_a_full_host_backlog_connects_once_the_host_program_accepts()
    {
        await using var h = new UnixBackendHarness(backendOptions: path => new UnixSocketBackendOptions
        {
            UdsPath = path,
            GuestConnectTimeout = TimeSpan.FromSeconds(20),
        });
        using Socket listener = h.ListenOnHostPort(7203, backlog: 0);
        var connector = new UnixPortConnector(h.UdsPath);
        var fillers = new List<Socket>();
        try
        {
            while (fillers.Count < 64)
            {
                UnixConnectResult result = connector.TryConnect(7203, VsockType.Stream);
                if (!result.IsConnected)
                {
                    Assert.Equal(UnixConnectStatus.Busy, result.Status);
                    break;
                }

                fillers.Add(result.Socket!);
            }

            Task<GuestSocket> connecting = h.Guest.ConnectAsync(7203, cancellationToken: Token);

            // Still retrying (the backlog is full), then the host program takes the queued connections: the retry on
            // the device loop's timer gets in.
            Assert.False(connecting.IsCompleted);
            var accepted = new List<Socket>();
            try
            {
                for (int i = 0; i < fillers.Count; i++)
                {
                    accepted.Add(await listener.AcceptAsync(Token));
                }

                GuestSocket guest = await connecting.WaitAsync(TimeSpan.FromSeconds(20), Token);
                using Socket server = await listener.AcceptAsync(Token);
                await guest.SendAsync("through"u8.ToArray(), Token);
                Assert.Equal("through", Encoding.ASCII.GetString(await UnixTestSockets.ReadExactlyOrEofAsync(server, 7)));
                Assert.Equal(1, h.Backend.Counters.GuestConnects);
            }
            finally
            {
                accepted.ForEach(s => s.Dispose());
            }
        }
        finally
        {
            fillers.ForEach(s => s.Dispose());
        }
    }

    /// <summary>A device stand-in: its loop is a <see cref="TestLoop"/>, and every connect is accepted at once with port 4242.</summary>
    private sealed class FakeHost(TestLoop loop) : IVsockBackendHost
    {
        public System.Collections.Concurrent.BlockingCollection<(uint Port, bool OnLoop)> Calls { get; } = [];

        public ulong GuestCid => 3;

        public IVsockFdPoller FdPoller => loop.Poller;

        public Task<uint> ConnectAsync(uint guestPort, VsockType type, IVsockEndpoint endpoint, CancellationToken cancellationToken)
        {
            Calls.Add((guestPort, loop.IsLoopThread), cancellationToken);
            return Task.FromResult(4242u);
        }
    }
}
