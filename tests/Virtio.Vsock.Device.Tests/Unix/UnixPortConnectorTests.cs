using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Virtio.Vsock;
using Virtio.Vsock.Backends.Unix;

namespace Virtio.Vsock.Device.Tests.Unix;

public sealed class UnixPortConnectorTests : IDisposable
{
    private readonly UnixTestSockets _sockets = new();
    private readonly TestLoop _loop = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        _loop.Dispose();
        _sockets.Dispose();
    }

    [Fact(Timeout = 45_000)]
    public async Task Connects_to_uds_path_underscore_port_and_moves_data()
    {
        string uds = _sockets.NewPath("uds");
        var connector = new UnixPortConnector(uds);
        Assert.Equal(uds + "_1234", connector.GetPath(1234));
        using Socket hostListener = UnixTestSockets.Listen(uds + "_1234");

        UnixConnectResult result = await connector.ConnectAsync(1234, VsockType.Stream, _loop.Poller, Ct);
        Assert.Equal(UnixConnectStatus.Connected, result.Status);
        using Socket device = result.Socket!;
        Assert.False(device.Blocking);
        Assert.Equal(SocketType.Stream, device.SocketType);
        using Socket host = await hostListener.AcceptAsync(Ct);

        Assert.True(UnixSocketIo.Send(device, "ping"u8).IsOk);
        Assert.Equal("ping", Encoding.ASCII.GetString(await UnixTestSockets.ReadExactlyOrEofAsync(host, 4)));
        await host.SendAsync("pong"u8.ToArray(), Ct);
        Assert.True((await SocketWait.ReadableAsync(device, Ct)).IsOk);
        byte[] buffer = new byte[8];
        UnixIoResult received = UnixSocketIo.Receive(device, buffer);
        Assert.Equal(4, received.Bytes);
        Assert.Equal("pong", Encoding.ASCII.GetString(buffer, 0, 4));
    }

    [Fact(Timeout = 45_000)]
    public async Task A_missing_socket_file_fails_synchronously_and_fast()
    {
        var connector = new UnixPortConnector(_sockets.NewPath("uds"));
        ValueTask<UnixConnectResult> pending = connector.ConnectAsync(5, VsockType.Stream, _loop.Poller, Ct);
        Assert.True(pending.IsCompleted); // synchronously: no wait, no retry (no wall-clock bound: the box is loaded)
        UnixConnectResult result = await pending;
        Assert.Equal(UnixConnectStatus.NotFound, result.Status);
        Assert.Null(result.Socket);
        Assert.Equal(2, result.Errno);
        Assert.Equal(UnixConnectStatus.NotFound, connector.TryConnect(5, VsockType.SeqPacket).Status);
    }

    [Fact(Timeout = 45_000)]
    public async Task A_stale_socket_file_or_a_regular_file_is_refused()
    {
        string uds = _sockets.NewPath("uds");
        var connector = new UnixPortConnector(uds);
        _sockets.CreateStaleSocketFile(connector.GetPath(6));
        Assert.Equal(UnixConnectStatus.Refused, (await connector.ConnectAsync(6, VsockType.Stream, _loop.Poller, Ct)).Status);
        await File.WriteAllTextAsync(connector.GetPath(7), "not a socket", Ct);
        Assert.Equal(UnixConnectStatus.Refused, (await connector.ConnectAsync(7, VsockType.Stream, _loop.Poller, Ct)).Status);
    }

    [Fact(Timeout = 45_000)]
    public async Task A_listener_of_the_other_type_is_a_type_mismatch()
    {
        string uds = _sockets.NewPath("uds");
        var connector = new UnixPortConnector(uds);
        using Socket stream = UnixTestSockets.Listen(connector.GetPath(8), SocketType.Stream);
        Assert.Equal(UnixConnectStatus.WrongType, (await connector.ConnectAsync(8, VsockType.SeqPacket, _loop.Poller, Ct)).Status);
        using Socket seq = UnixTestSockets.Listen(connector.GetPath(9), SocketType.Seqpacket);
        Assert.Equal(UnixConnectStatus.WrongType, (await connector.ConnectAsync(9, VsockType.Stream, _loop.Poller, Ct)).Status);
    }

    private static List<Socket> FillBacklog(UnixPortConnector connector, uint port, VsockType type = VsockType.Stream)
    {
        var held = new List<Socket>();
        for (int i = 0; i < 64; i++)
        {
            UnixConnectResult attempt = connector.TryConnect(port, type);
            if (attempt.Status == UnixConnectStatus.Busy)
            {
                return held;
            }

            Assert.Equal(UnixConnectStatus.Connected, attempt.Status);
            held.Add(attempt.Socket!);
        }

        Assert.Fail("the backlog never filled");
        return held;
    }

    [Fact(Timeout = 45_000)]
    public async Task A_listener_that_never_accepts_times_out_as_a_value_without_blocking_the_caller()
    {
        string uds = _sockets.NewPath("uds");
        var connector = new UnixPortConnector(uds, TimeSpan.FromMilliseconds(300));
        using Socket neverAccepts = UnixTestSockets.Listen(connector.GetPath(10), backlog: 0);
        List<Socket> held = FillBacklog(connector, 10);
        try
        {
            var watch = Stopwatch.StartNew();
            ValueTask<UnixConnectResult> pending = connector.ConnectAsync(10, VsockType.Stream, _loop.Poller, Ct);

            // The call returned before its outcome (it would be complete had it blocked the caller through the retries).
            Assert.False(pending.IsCompleted);
            UnixConnectResult result = await pending;
            Assert.Equal(UnixConnectStatus.TimedOut, result.Status);
            Assert.Null(result.Socket);

            // Not before its 300 ms timeout (timer granularity allowed); the upper bound only says "it ended", generous for a loaded box.
            Assert.InRange(watch.ElapsedMilliseconds, 250, 20_000);
        }
        finally
        {
            held.ForEach(s => s.Dispose());
        }
    }

    [Fact(Timeout = 45_000)]
    public async Task A_full_backlog_that_drains_in_time_connects()
    {
        string uds = _sockets.NewPath("uds");
        var connector = new UnixPortConnector(uds, TimeSpan.FromSeconds(20));
        using Socket slow = UnixTestSockets.Listen(connector.GetPath(11), backlog: 0);
        List<Socket> held = FillBacklog(connector, 11);
        try
        {
            // The backlog is full: the connect is pending (retrying), not done; then the backlog drains.
            ValueTask<UnixConnectResult> pending = connector.ConnectAsync(11, VsockType.Stream, _loop.Poller, Ct);
            Assert.False(pending.IsCompleted);
            using Socket first = await slow.AcceptAsync(Ct);
            UnixConnectResult result = await pending;
            Assert.Equal(UnixConnectStatus.Connected, result.Status);
            result.Socket!.Dispose();
        }
        finally
        {
            held.ForEach(s => s.Dispose());
        }
    }

    [Fact(Timeout = 45_000)]
    public async Task A_full_backlog_is_retried_on_the_loops_timers_and_completes_on_the_loop()
    {
        string uds = _sockets.NewPath("uds");
        var connector = new UnixPortConnector(uds, TimeSpan.FromSeconds(20));
        using Socket slow = UnixTestSockets.Listen(connector.GetPath(13), backlog: 0);
        List<Socket> held = FillBacklog(connector, 13);
        try
        {
            var outcome = new TaskCompletionSource<(UnixConnectResult Result, bool OnLoop, object? State)>(TaskCreationOptions.RunContinuationsAsynchronously);
            object state = new();
            bool now = connector.Connect(
                13, VsockType.Stream, _loop.Poller, (s, result) => outcome.TrySetResult((result, _loop.IsLoopThread, s)), state, Ct, out _);
            Assert.False(now); // the backlog is full: retrying, on the loop's timers

            // The retries keep meeting EAGAIN until the host program accepts one queued connection.
            Assert.False(outcome.Task.IsCompleted);
            using Socket first = await slow.AcceptAsync(Ct);
            (UnixConnectResult result, bool onLoop, object? passed) = await outcome.Task.WaitAsync(TimeSpan.FromSeconds(20), Ct);
            Assert.Equal(UnixConnectStatus.Connected, result.Status);
            Assert.True(onLoop, "the retried connect completed off the device loop");
            Assert.Same(state, passed);
            result.Socket!.Dispose();
        }
        finally
        {
            held.ForEach(s => s.Dispose());
        }
    }

    [Fact(Timeout = 45_000)]
    public void A_stopped_loop_ends_a_retry_as_canceled()
    {
        string uds = _sockets.NewPath("uds");
        var connector = new UnixPortConnector(uds, TimeSpan.FromSeconds(20));
        using Socket neverAccepts = UnixTestSockets.Listen(connector.GetPath(14), backlog: 0);
        List<Socket> held = FillBacklog(connector, 14);
        var stopped = new TestLoop();
        stopped.Dispose();
        try
        {
            UnixConnectResult? outcome = null;
            Assert.False(connector.Connect(14, VsockType.Stream, stopped.Poller, (_, result) => outcome = result, null, Ct, out _));
            Assert.Equal(UnixConnectStatus.Canceled, outcome?.Status);
        }
        finally
        {
            held.ForEach(s => s.Dispose());
        }
    }

    [Fact(Timeout = 45_000)]
    public async Task Cancellation_ends_the_retries_with_a_value()
    {
        string uds = _sockets.NewPath("uds");
        var connector = new UnixPortConnector(uds, TimeSpan.FromMinutes(5));
        using Socket neverAccepts = UnixTestSockets.Listen(connector.GetPath(12), backlog: 0);
        List<Socket> held = FillBacklog(connector, 12);
        try
        {
            using var cts = new CancellationTokenSource(100);
            var watch = Stopwatch.StartNew();
            UnixConnectResult result = await connector.ConnectAsync(12, VsockType.Stream, _loop.Poller, cts.Token);
            Assert.Equal(UnixConnectStatus.Canceled, result.Status);
            Assert.True(watch.ElapsedMilliseconds < 30_000, $"{watch.ElapsedMilliseconds} ms: cancellation, not the 5-minute connect timeout, ended it");
            Assert.Equal(UnixConnectStatus.Canceled, (await connector.ConnectAsync(12, VsockType.Stream, _loop.Poller, cts.Token)).Status);
        }
        finally
        {
            held.ForEach(s => s.Dispose());
        }
    }

    [Fact(Timeout = 45_000)]
    public async Task SeqPacket_connects_with_a_seqpacket_socket_and_keeps_message_boundaries()
    {
        string uds = _sockets.NewPath("uds");
        var connector = new UnixPortConnector(uds);
        using Socket hostListener = UnixTestSockets.Listen(connector.GetPath(77), SocketType.Seqpacket);
        UnixConnectResult result = await connector.ConnectAsync(77, VsockType.SeqPacket, _loop.Poller, Ct);
        Assert.True(result.IsConnected, result.ToString());
        using Socket device = result.Socket!;
        Assert.Equal(SocketType.Seqpacket, device.SocketType);
        Assert.True(UnixSocketIo.ConfigureForDataPath(device).IsOk);
        using Socket host = await hostListener.AcceptAsync(Ct);

        // Guest -> host: each SendMessage is one message.
        Assert.True(UnixSocketIo.SendMessage(device, "first"u8).IsOk);
        Assert.True(UnixSocketIo.SendMessage(device, "second message"u8).IsOk);
        byte[] buffer = new byte[100];
        Assert.Equal(5, await host.ReceiveAsync(buffer, Ct));
        Assert.Equal(14, await host.ReceiveAsync(buffer, Ct));

        // Host -> guest: sizes survive, including a large one.
        byte[] big = new byte[50_000];
        new Random(3).NextBytes(big);
        await host.SendAsync("a"u8.ToArray(), Ct);
        await host.SendAsync(big, Ct);
        await host.SendAsync("bc"u8.ToArray(), Ct);
        var lengths = new List<int>();
        byte[] receive = new byte[64 * 1024];
        while (lengths.Count < 3)
        {
            Assert.True((await SocketWait.ReadableAsync(device, Ct)).IsOk);
            UnixIoResult peek = UnixSocketIo.PeekMessage(device);
            if (peek.Status == UnixIoStatus.WouldBlock)
            {
                continue;
            }

            UnixIoResult message = UnixSocketIo.ReceiveMessage(device, receive);
            Assert.Equal(peek.MessageLength, message.MessageLength);
            Assert.False(message.Truncated);
            lengths.Add(message.Bytes);
            if (message.Bytes == big.Length)
            {
                Assert.Equal(big, receive.AsSpan(0, big.Length).ToArray());
            }
        }

        Assert.Equal([1, 50_000, 2], lengths);
    }

    [Fact]
    public void Rejects_bad_configuration()
    {
        Assert.Throws<ArgumentException>(() => new UnixPortConnector(Path.Combine(_sockets.Directory, new string('p', 100))));
        Assert.ThrowsAny<ArgumentException>(() => new UnixPortConnector(""));
        Assert.Throws<ArgumentOutOfRangeException>(() => new UnixPortConnector(_sockets.NewPath(), TimeSpan.Zero));
        Assert.Equal(TimeSpan.FromSeconds(1), new UnixPortConnector(_sockets.NewPath()).ConnectTimeout);
    }

    [Fact(Timeout = 45_000)]
    public async Task An_unknown_socket_type_is_a_failure_value()
    {
        var connector = new UnixPortConnector(_sockets.NewPath("uds"));
        Assert.Equal(UnixConnectStatus.Failed, (await connector.ConnectAsync(1, (VsockType)9, _loop.Poller, Ct)).Status);
    }
}
