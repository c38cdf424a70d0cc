using System.Diagnostics;
using System.Net.Sockets;
using Virtio.Vsock;
using Virtio.Vsock.Backends.Unix;

namespace Virtio.Vsock.Device.Tests.Unix;

/// <summary>
/// The listener on the device loop: accept, handshake reads and the handshake deadline run on the loop thread; the
/// handshake bound keeps connections in the kernel backlog; nothing is accepted before a loop is attached.
/// </summary>
public sealed class HybridVsockListenerLoopTests : IDisposable
{
    private readonly UnixTestSockets _sockets = new();
    private readonly TestLoop _loop = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        _loop.Dispose();
        _sockets.Dispose();
    }

    private HybridVsockListener StartListener(
        int maxPending = 64,
        int maxQueued = 64,
        TimeSpan? handshakeTimeout = null,
        Action? queued = null,
        Action<HandshakeFailure, ConnectCommandError>? failed = null,
        bool attach = true)
    {
        HybridVsockListener listener = HybridVsockListener.Start(new HybridVsockListenerOptions
        {
            Path = _sockets.NewPath("loop"),
            HandshakeTimeout = handshakeTimeout ?? TimeSpan.FromSeconds(10),
            MaxPendingHandshakes = maxPending,
            MaxQueuedRequests = maxQueued,
            RequestQueued = queued,
            HandshakeFailed = failed,
        });
        if (attach)
        {
            Assert.True(listener.Attach(_loop.Poller));
        }

        return listener;
    }

    /// <summary>Runs nothing on the loop and waits for it: every event that was ready before has been dispatched.</summary>
    private void LoopRoundTrip()
    {
        var done = new TaskCompletionSource();
        var timer = _loop.Poller.CreateTimer(new Callback(() => done.TrySetResult()));
        Assert.True(timer.Schedule(0));
        Assert.True(done.Task.Wait(TimeSpan.FromSeconds(20), Ct), "the loop did not run a due timer within 20 s");
        timer.Dispose();
    }

    [Fact(Timeout = 30_000)]
    public async Task Accept_handshake_and_queueing_run_on_the_device_loop_thread()
    {
        int queuedOn = 0; // 1: the callback ran on the loop thread, 2: off it
        await using HybridVsockListener listener = StartListener(queued: () => Volatile.Write(ref queuedOn, _loop.IsLoopThread ? 1 : 2));
        using Socket host = await UnixTestSockets.ConnectAsync(listener.Path);
        await host.SendAsync("CONNECT 41\nhi"u8.ToArray(), Ct);

        HostConnectRequest? request = null;
        Assert.True(await UnixTestSockets.EventuallyAsync(() => listener.TryTake(out request)), "no request within 20 s");
        using (request)
        {
            Assert.Equal(41u, request!.Port);
            Assert.Equal("hi"u8.ToArray(), request.InitialData.ToArray());
        }

        // The listener queues the request, then calls the callback: the request can be taken in between.
        Assert.True(await UnixTestSockets.EventuallyAsync(() => Volatile.Read(ref queuedOn) != 0), "the queued callback did not run within 20 s");
        Assert.True(Volatile.Read(ref queuedOn) == 1, "the request was queued off the device loop");

        // The handshake's watch was released when it completed: only the listening socket is watched now.
        Assert.Equal(1, _loop.WatchCount);
    }

    [Fact(Timeout = 30_000)]
    public async Task The_handshake_deadline_is_a_loop_timer()
    {
        var failures = new List<(HandshakeFailure Failure, bool OnLoop)>();
        await using HybridVsockListener listener = StartListener(
            handshakeTimeout: TimeSpan.FromMilliseconds(200),
            failed: (failure, _) =>
            {
                lock (failures)
                {
                    failures.Add((failure, _loop.IsLoopThread));
                }
            });
        using Socket silent = await UnixTestSockets.ConnectAsync(listener.Path);
        await silent.SendAsync("CONN"u8.ToArray(), Ct);
        var clock = Stopwatch.StartNew();
        Assert.Empty(await UnixTestSockets.ReadToEndAsync(silent, 20_000));
        Assert.True(clock.ElapsedMilliseconds >= 150, $"closed after {clock.ElapsedMilliseconds} ms, before its 200 ms deadline");
        Assert.True(await UnixTestSockets.EventuallyAsync(() => listener.Counters.TimedOut == 1), "the timeout was not counted within 20 s");

        // The listener counts a failure, then calls the callback: wait for the callback too.
        Assert.True(await UnixTestSockets.EventuallyAsync(() => { lock (failures) return failures.Count > 0; }), "the failure callback was not called within 20 s");
        lock (failures)
        {
            Assert.Equal([(HandshakeFailure.TimedOut, true)], failures);
        }

        Assert.Equal(0, listener.Counters.PendingHandshakes);
    }

    [Fact(Timeout = 30_000)]
    public async Task Before_a_loop_is_attached_connections_wait_in_the_backlog_then_are_served()
    {
        await using HybridVsockListener listener = StartListener(attach: false);
        using Socket host = await UnixTestSockets.ConnectAsync(listener.Path);
        await host.SendAsync("CONNECT 7\n"u8.ToArray(), Ct);

        // Connected (the backlog had room), but nobody reads: the line is still in the socket.
        LoopRoundTrip();
        Assert.Equal(0, listener.Counters.Accepted);
        Assert.NotEqual(0, UnixTestSockets.UnreadByPeer(host)); // the line sits unread

        Assert.True(listener.Attach(_loop.Poller));
        HostConnectRequest? request = null;
        Assert.True(await UnixTestSockets.EventuallyAsync(() => listener.TryTake(out request)), "the waiting connection was not served within 20 s of the attach");
        using (request)
        {
            Assert.Equal(7u, request!.Port);
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task The_handshake_bound_keeps_further_connections_in_the_backlog_until_a_slot_frees()
    {
        await using HybridVsockListener listener = StartListener(maxPending: 2);
        Socket silent1 = await UnixTestSockets.ConnectAsync(listener.Path);
        using Socket silent2 = await UnixTestSockets.ConnectAsync(listener.Path);
        Assert.True(await UnixTestSockets.EventuallyAsync(() => listener.Counters.PendingHandshakes == 2), "two handshakes did not start within 20 s");

        using Socket third = await UnixTestSockets.ConnectAsync(listener.Path);
        await third.SendAsync("CONNECT 3\n"u8.ToArray(), Ct);
        LoopRoundTrip();
        LoopRoundTrip();
        Assert.Equal(2, listener.Counters.Accepted);
        Assert.NotEqual(0, UnixTestSockets.UnreadByPeer(third)); // the line sits unread
        Assert.False(listener.TryTake(out _));

        // One silent peer leaves: its slot frees and the third connection is taken from the backlog.
        silent1.Dispose();
        HostConnectRequest? request = null;
        Assert.True(await UnixTestSockets.EventuallyAsync(() => listener.TryTake(out request)), "the held connection was not served within 20 s of a free slot");
        using (request)
        {
            Assert.Equal(3u, request!.Port);
        }

        Assert.Equal(3, listener.Counters.Accepted);
        Assert.Equal(1, listener.Counters.EndOfStream);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_full_request_queue_parks_complete_handshakes_and_taking_one_lets_the_next_in()
    {
        await using HybridVsockListener listener = StartListener(maxPending: 1, maxQueued: 1);
        var hosts = new List<Socket>();
        try
        {
            for (uint port = 1; port <= 3; port++)
            {
                Socket host = await UnixTestSockets.ConnectAsync(listener.Path);
                hosts.Add(host);
                await host.SendAsync(System.Text.Encoding.ASCII.GetBytes($"CONNECT {port}\n"), Ct);
            }

            // One queued, one complete but parked (holding the one pending slot), the third still in the backlog.
            Assert.True(await UnixTestSockets.EventuallyAsync(() => listener.Counters is { QueuedRequests: 1, PendingHandshakes: 1 }), "queue and slot did not fill within 20 s");
            LoopRoundTrip();
            Assert.Equal(2, listener.Counters.Accepted);
            Assert.NotEqual(0, UnixTestSockets.UnreadByPeer(hosts[2])); // the line sits unread

            var ports = new List<uint>();
            for (int i = 0; i < 3; i++)
            {
                HostConnectRequest? request = null;
                Assert.True(await UnixTestSockets.EventuallyAsync(() => listener.TryTake(out request)), $"request {i + 1} not taken within 20 s");
                ports.Add(request!.Port);
                request.Dispose();
            }

            Assert.Equal([1u, 2u, 3u], ports);
            Assert.Equal(3, listener.Counters.Delivered);
        }
        finally
        {
            hosts.ForEach(h => h.Dispose());
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task Dispose_before_attach_removes_the_file_and_closes_backlogged_connections()
    {
        HybridVsockListener listener = StartListener(attach: false);
        using Socket host = await UnixTestSockets.ConnectAsync(listener.Path);
        await listener.DisposeAsync();
        Assert.False(File.Exists(listener.Path));
        Assert.Empty(await UnixTestSockets.ReadToEndAsync(host, 20_000));
        Assert.False(listener.Attach(_loop.Poller));
    }

    private sealed class Callback(Action action) : IVsockTimerHandler
    {
        public void OnTimer() => action();

        public void OnTimerFault(Exception exception)
        {
        }
    }
}
