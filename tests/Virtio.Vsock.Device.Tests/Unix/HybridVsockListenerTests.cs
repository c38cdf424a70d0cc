using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Virtio.Vsock;
using Virtio.Vsock.Backends.Unix;

namespace Virtio.Vsock.Device.Tests.Unix;

public sealed class HybridVsockListenerTests : IDisposable
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
        string? path = null,
        TimeSpan? handshakeTimeout = null,
        int maxPending = 64,
        VsockType type = VsockType.Stream,
        Action<HandshakeFailure, ConnectCommandError>? failed = null,
        int maxQueued = 1024,
        Action? queued = null,
        bool attach = true)
    {
        HybridVsockListener listener = HybridVsockListener.Start(new HybridVsockListenerOptions
        {
            Path = path ?? _sockets.NewPath("uds"),
            SocketType = type,
            HandshakeTimeout = handshakeTimeout ?? TimeSpan.FromSeconds(5),
            MaxPendingHandshakes = maxPending,
            MaxQueuedRequests = maxQueued,
            HandshakeFailed = failed,
            RequestQueued = queued,
        });
        if (attach)
        {
            Assert.True(listener.Attach(_loop.Poller));
        }

        return listener;
    }

    private static async Task<HostConnectRequest> TakeAsync(HybridVsockListener listener, int timeoutMs = 5000)
    {
        HostConnectRequest? request = null;
        Assert.True(await UnixTestSockets.EventuallyAsync(() => listener.TryTake(out request), timeoutMs), $"no request within {timeoutMs} ms");
        return request!;
    }

    private static SocketType NetType(VsockType type) => type == VsockType.SeqPacket ? SocketType.Seqpacket : SocketType.Stream;

    [Fact(Timeout = 10_000)]
    public async Task Handshake_then_OK_reply_then_data_both_ways()
    {
        await using HybridVsockListener listener = StartListener();
        using Socket host = await UnixTestSockets.ConnectAsync(listener.Path);
        await host.SendAsync("CONNECT 52\n"u8.ToArray());

        using HostConnectRequest request = await TakeAsync(listener);
        Assert.Equal(52u, request.Port);
        Assert.Equal(VsockType.Stream, request.Type);
        Assert.True(request.InitialData.IsEmpty);

        UnixIoResult reply = request.Accept(1025);
        Assert.True(reply.IsOk, reply.ToString());
        Assert.True(request.IsAccepted);
        Assert.Equal("OK 1025\n", Encoding.ASCII.GetString(await UnixTestSockets.ReadExactlyOrEofAsync(host, 8)));

        using Socket device = request.Socket;
        await device.SendAsync("from guest"u8.ToArray());
        Assert.Equal("from guest", Encoding.ASCII.GetString(await UnixTestSockets.ReadExactlyOrEofAsync(host, 10)));
        await host.SendAsync("from host"u8.ToArray());
        Assert.Equal("from host", Encoding.ASCII.GetString(await UnixTestSockets.ReadExactlyOrEofAsync(device, 9)));

        // Accept is one-shot.
        Assert.Equal(UnixIoStatus.SocketClosed, request.Accept(1).Status);
        Assert.Equal(1, listener.Counters.Delivered);
    }

    [Fact(Timeout = 10_000)]
    public async Task OK_reply_carries_the_full_u32_range()
    {
        await using HybridVsockListener listener = StartListener();
        using Socket host = await UnixTestSockets.ConnectAsync(listener.Path);
        await host.SendAsync("connect 1\r\n"u8.ToArray());
        using HostConnectRequest request = await TakeAsync(listener);
        Assert.True(request.Accept(uint.MaxValue).IsOk);
        Assert.Equal("OK 4294967295\n", Encoding.ASCII.GetString(await UnixTestSockets.ReadExactlyOrEofAsync(host, 14)));
        request.Socket.Dispose();
    }

    [Fact(Timeout = 15_000)]
    public async Task Handshake_split_into_one_byte_writes()
    {
        await using HybridVsockListener listener = StartListener();
        using Socket host = await UnixTestSockets.ConnectAsync(listener.Path);
        foreach (byte b in "CoNnEcT  77 \r\n"u8.ToArray())
        {
            await host.SendAsync(new[] { b });

            // The listener read this byte on its own before the next is written: the line really arrives in pieces.
            Assert.True(await UnixTestSockets.EventuallyAsync(() => UnixTestSockets.UnreadByPeer(host) == 0), "the listener did not read the byte");
        }

        using HostConnectRequest request = await TakeAsync(listener);
        Assert.Equal(77u, request.Port);
        Assert.True(request.InitialData.IsEmpty);
    }

    [Fact(Timeout = 10_000)]
    public async Task Bytes_sent_right_after_the_newline_are_preserved_in_order()
    {
        await using HybridVsockListener listener = StartListener();
        using Socket host = await UnixTestSockets.ConnectAsync(listener.Path);
        byte[] payload = new byte[5000];
        new Random(1).NextBytes(payload);
        byte[] first = [.. "CONNECT 9\n"u8.ToArray(), .. payload];
        await host.SendAsync(first);

        using HostConnectRequest request = await TakeAsync(listener);
        Assert.Equal(9u, request.Port);
        Assert.True(request.InitialData.Length <= ConnectCommandParser.MaxLineLength - 10);
        Assert.True(request.Accept(3000).IsOk);
        using Socket device = request.Socket;
        byte[] rest = await UnixTestSockets.ReadExactlyOrEofAsync(device, payload.Length - request.InitialData.Length);
        Assert.Equal(payload, request.InitialData.ToArray().Concat(rest).ToArray());
    }

    [Fact(Timeout = 10_000)]
    public async Task Short_stream_data_in_the_same_write_lands_in_initial_data()
    {
        await using HybridVsockListener listener = StartListener();
        using Socket host = await UnixTestSockets.ConnectAsync(listener.Path);
        await host.SendAsync("CONNECT 7\nhello world"u8.ToArray());
        using HostConnectRequest request = await TakeAsync(listener);
        Assert.Equal("hello world", Encoding.ASCII.GetString(request.InitialData.Span));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_silent_peer_is_closed_at_the_deadline()
    {
        await using HybridVsockListener listener = StartListener(handshakeTimeout: TimeSpan.FromMilliseconds(300));
        using Socket host = await UnixTestSockets.ConnectAsync(listener.Path);
        await host.SendAsync("CONN"u8.ToArray());
        var watch = Stopwatch.StartNew();
        byte[] got = await UnixTestSockets.ReadToEndAsync(host);
        Assert.Empty(got);
        Assert.True(watch.ElapsedMilliseconds >= 150, $"closed after {watch.ElapsedMilliseconds} ms, before the handshake deadline");
        Assert.True(await UnixTestSockets.EventuallyAsync(() => listener.Counters.TimedOut == 1));
        Assert.True(await UnixTestSockets.EventuallyAsync(() => listener.Counters.PendingHandshakes == 0));
    }

    [Fact(Timeout = 45_000)]
    public async Task A_trickling_peer_is_cut_off_by_the_total_deadline_not_an_idle_timer()
    {
        // One byte every 120 ms against a 3 s handshake timeout: an idle timer would never fire (every gap is 25 times
        // below it, room for a loaded machine), only a total deadline does. The 31-byte line (under the 32-byte limit)
        // would take over 3.7 s.
        var handshakeTimeout = TimeSpan.FromSeconds(3);
        var pace = TimeSpan.FromMilliseconds(120);
        await using HybridVsockListener listener = StartListener(handshakeTimeout: handshakeTimeout);
        using Socket host = await UnixTestSockets.ConnectAsync(listener.Path);
        var watch = Stopwatch.StartNew();
        byte[] slow = Encoding.ASCII.GetBytes("CONNECT".PadRight(31));
        Assert.True(slow.Length < ConnectCommandParser.MaxLineLength);
        TimeSpan longestGap = TimeSpan.Zero;
        TimeSpan lastSend = TimeSpan.Zero;
        bool closed = false;
        foreach (byte b in slow)
        {
            if (listener.Counters.TimedOut == 1)
            {
                closed = true;
                break;
            }

            try
            {
                await host.SendAsync(new[] { b });
            }
            catch (SocketException)
            {
                closed = true;
                break;
            }

            TimeSpan now = watch.Elapsed;
            longestGap = now - lastSend > longestGap ? now - lastSend : longestGap;
            lastSend = now;
            await Task.Delay(pace, Ct); // pacing, far below the handshake timeout
        }

        Assert.True(closed || await UnixTestSockets.EventuallyAsync(() => listener.Counters.TimedOut == 1), "the trickling peer was never cut off");
        Assert.Equal(1, listener.Counters.TimedOut);

        // Not before the deadline (timer granularity allowed); and while the peer was sending, so no idle timer could
        // have fired: if the machine stalled the sender for a whole timeout the run proves nothing and says so.
        Assert.True(watch.Elapsed >= handshakeTimeout - TimeSpan.FromMilliseconds(100), $"cut off after {watch.ElapsedMilliseconds} ms");
        Assert.True(longestGap < handshakeTimeout, $"inconclusive: the sender stalled {longestGap.TotalMilliseconds} ms (machine overloaded), an idle timer could have fired");
    }

    [Fact(Timeout = 10_000)]
    public async Task End_of_stream_before_the_newline_closes_that_connection_only()
    {
        var failures = new List<(HandshakeFailure, ConnectCommandError)>();
        await using HybridVsockListener listener = StartListener(failed: (f, d) => { lock (failures) failures.Add((f, d)); });
        using (Socket quitter = await UnixTestSockets.ConnectAsync(listener.Path))
        {
            await quitter.SendAsync("CONNECT 5"u8.ToArray());
            quitter.Shutdown(SocketShutdown.Send);
            Assert.Empty(await UnixTestSockets.ReadToEndAsync(quitter));
        }

        using (Socket closer = await UnixTestSockets.ConnectAsync(listener.Path))
        {
            // Closes without sending anything.
        }

        Assert.True(await UnixTestSockets.EventuallyAsync(() => listener.Counters.EndOfStream == 2));
        lock (failures)
        {
            Assert.All(failures, f => Assert.Equal((HandshakeFailure.EndOfStream, ConnectCommandError.EndOfStream), f));
        }

        using Socket good = await UnixTestSockets.ConnectAsync(listener.Path);
        await good.SendAsync("CONNECT 6\n"u8.ToArray());
        using HostConnectRequest request = await TakeAsync(listener);
        Assert.Equal(6u, request.Port);
    }

    [Theory(Timeout = 10_000)]
    [InlineData("GET / HTTP/1.1\r\n\r\n", HandshakeFailure.InvalidCommand, ConnectCommandError.NotConnectCommand)]
    [InlineData("CONNECT 99999999999\n", HandshakeFailure.InvalidCommand, ConnectCommandError.PortOverflow)]
    [InlineData("CONNECT -1\n", HandshakeFailure.InvalidCommand, ConnectCommandError.InvalidPort)]
    [InlineData("CONNECT 1 2\n", HandshakeFailure.InvalidCommand, ConnectCommandError.UnexpectedCharacter)]
    [InlineData("CONNECT 0000000000000000000000000000000000001\n", HandshakeFailure.CommandTooLong, ConnectCommandError.TooLong)]
    [InlineData("CONNECT                                                      ", HandshakeFailure.CommandTooLong, ConnectCommandError.TooLong)]
    public async Task Malformed_or_overlong_lines_close_the_socket_without_a_reply(string line, object expectedFailure, object expectedDetail)
    {
        var failure = (HandshakeFailure)expectedFailure; // internal enums reach a public test method boxed
        var detail = (ConnectCommandError)expectedDetail;
        var seen = new TaskCompletionSource<(HandshakeFailure, ConnectCommandError)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using HybridVsockListener listener = StartListener(failed: (f, d) => seen.TrySetResult((f, d)));
        using Socket host = await UnixTestSockets.ConnectAsync(listener.Path);
        try
        {
            await host.SendAsync(Encoding.ASCII.GetBytes(line));
        }
        catch (SocketException)
        {
            // The listener may close before the whole line is written.
        }

        Assert.Empty(await UnixTestSockets.ReadToEndAsync(host));
        Assert.Equal((failure, detail), await seen.Task.WaitAsync(TimeSpan.FromSeconds(5), Ct));
        Assert.False(listener.TryTake(out _));
    }

    [Fact(Timeout = 10_000)]
    public async Task A_huge_garbage_stream_is_cut_off_after_at_most_32_bytes()
    {
        await using HybridVsockListener listener = StartListener();
        using Socket host = await UnixTestSockets.ConnectAsync(listener.Path);
        byte[] junk = new byte[1 << 20];
        junk.AsSpan().Fill((byte)' ');
        "CONNECT"u8.CopyTo(junk);
        Task send = host.SendAsync(junk);
        Assert.True(await UnixTestSockets.EventuallyAsync(() => listener.Counters.CommandTooLong == 1));
        await Assert.ThrowsAnyAsync<SocketException>(() => send.WaitAsync(TimeSpan.FromSeconds(5), Ct));
    }

    [Fact(Timeout = 20_000)]
    public async Task Many_concurrent_handshakes_all_complete_despite_slow_peers_holding_slots()
    {
        await using HybridVsockListener listener = StartListener(handshakeTimeout: TimeSpan.FromSeconds(3), maxPending: 16);
        var idle = new List<Socket>();
        for (int i = 0; i < 10; i++)
        {
            idle.Add(await UnixTestSockets.ConnectAsync(listener.Path));
        }

        const int count = 200;
        var hosts = new Socket[count];
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, ct) =>
        {
            Socket host = await UnixTestSockets.ConnectAsync(listener.Path);
            hosts[i] = host;
            byte[] line = Encoding.ASCII.GetBytes($"CONNECT {1000 + i}\n");
            for (int offset = 0; offset < line.Length; offset += 3)
            {
                await host.SendAsync(line.AsMemory(offset, Math.Min(3, line.Length - offset)), SocketFlags.None, ct);
            }
        });

        var ports = new HashSet<uint>();
        for (int i = 0; i < count; i++)
        {
            using HostConnectRequest request = await TakeAsync(listener, 10_000);
            Assert.True(ports.Add(request.Port));
        }

        Assert.Equal(Enumerable.Range(1000, count).Select(p => (uint)p).ToHashSet(), ports);
        Assert.True(listener.Counters.PendingHandshakes <= 16);
        foreach (Socket s in hosts.Concat(idle))
        {
            s.Dispose();
        }

        Assert.True(await UnixTestSockets.EventuallyAsync(() => listener.Counters.PendingHandshakes == 0));
        Assert.Equal(count, listener.Counters.Delivered);
    }

    [Fact(Timeout = 10_000)]
    public async Task Reject_closes_the_host_socket_without_a_reply()
    {
        await using HybridVsockListener listener = StartListener();
        using Socket host = await UnixTestSockets.ConnectAsync(listener.Path);
        await host.SendAsync("CONNECT 1234\n"u8.ToArray());
        HostConnectRequest request = await TakeAsync(listener);
        request.Reject();
        Assert.True(request.IsClosed);
        Assert.Empty(await UnixTestSockets.ReadToEndAsync(host));
        Assert.Equal(UnixIoStatus.SocketClosed, request.Accept(5).Status);
        request.Dispose();
    }

    [Fact(Timeout = 10_000)]
    public async Task Accept_after_the_host_went_away_reports_a_value_and_closes()
    {
        await using HybridVsockListener listener = StartListener();
        Socket host = await UnixTestSockets.ConnectAsync(listener.Path);
        await host.SendAsync("CONNECT 1\n"u8.ToArray());
        HostConnectRequest request = await TakeAsync(listener);
        host.Dispose();
        UnixIoResult result = request.Accept(77);
        Assert.False(result.IsOk);
        Assert.True(result.IsFinal);
        Assert.True(request.IsClosed);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_stale_socket_file_is_replaced()
    {
        string path = _sockets.NewPath("stale");
        _sockets.CreateStaleSocketFile(path);
        Assert.True(File.Exists(path));
        await using HybridVsockListener listener = StartListener(path);
        using Socket host = await UnixTestSockets.ConnectAsync(path);
        await host.SendAsync("CONNECT 3\n"u8.ToArray());
        using HostConnectRequest request = await TakeAsync(listener);
        Assert.Equal(3u, request.Port);
    }

    [Fact(Timeout = 10_000)]
    public async Task Refuses_to_start_where_a_live_process_listens()
    {
        string path = _sockets.NewPath("live");
        await using HybridVsockListener first = StartListener(path);
        Assert.Equal(UnixSocketPath.Error.InUse, HybridVsockListener.TryStart(new HybridVsockListenerOptions { Path = path }, out HybridVsockListener? second));
        Assert.Null(second);
        Assert.Throws<IOException>(() => HybridVsockListener.Start(new HybridVsockListenerOptions { Path = path }));

        // A live listener of the other type counts as live too.
        Assert.Equal(UnixSocketPath.Error.InUse, HybridVsockListener.TryStart(new HybridVsockListenerOptions { Path = path, SocketType = VsockType.SeqPacket }, out _));

        // The first one still serves (the probe connection it saw was closed and counted).
        using Socket host = await UnixTestSockets.ConnectAsync(path);
        await host.SendAsync("CONNECT 8\n"u8.ToArray());
        using HostConnectRequest request = await TakeAsync(first);
        Assert.Equal(8u, request.Port);
    }

    [Fact(Timeout = 10_000)]
    public async Task Never_removes_something_that_is_not_a_socket()
    {
        string path = _sockets.NewPath("file");
        await File.WriteAllTextAsync(path, "precious", Ct);
        Assert.Equal(UnixSocketPath.Error.NotASocket, HybridVsockListener.TryStart(new HybridVsockListenerOptions { Path = path }, out _));
        Assert.Equal("precious", await File.ReadAllTextAsync(path, Ct));

        string dir = _sockets.NewPath("dir");
        Directory.CreateDirectory(dir);
        Assert.Equal(UnixSocketPath.Error.NotASocket, HybridVsockListener.TryStart(new HybridVsockListenerOptions { Path = dir }, out _));
        Assert.True(Directory.Exists(dir));
    }

    [Fact]
    public void Rejects_paths_that_do_not_fit_a_socket_address()
    {
        string longPath = Path.Combine(_sockets.Directory, new string('x', 120));
        Assert.Equal(UnixSocketPath.Error.InvalidPath, HybridVsockListener.TryStart(new HybridVsockListenerOptions { Path = longPath }, out _));
        Assert.Equal(UnixSocketPath.Error.Failed, HybridVsockListener.TryStart(new HybridVsockListenerOptions { Path = Path.Combine(_sockets.Directory, "missing", "s") }, out _));
    }

    [Fact(Timeout = 10_000)]
    public async Task Dispose_removes_its_socket_file_and_closes_pending_and_queued_connections()
    {
        string path = _sockets.NewPath("disp");
        HybridVsockListener listener = StartListener(path);
        using Socket pending = await UnixTestSockets.ConnectAsync(path);
        await pending.SendAsync("CONNECT"u8.ToArray());
        using Socket queued = await UnixTestSockets.ConnectAsync(path);
        await queued.SendAsync("CONNECT 2\n"u8.ToArray());
        Assert.True(await UnixTestSockets.EventuallyAsync(() => listener.Counters.QueuedRequests == 1));

        await listener.DisposeAsync();
        Assert.False(File.Exists(path));
        Assert.Empty(await UnixTestSockets.ReadToEndAsync(pending));
        Assert.Empty(await UnixTestSockets.ReadToEndAsync(queued));
        Assert.Equal(2, listener.Counters.ListenerStopped);
        await listener.DisposeAsync();
        listener.Dispose();
    }

    [Fact(Timeout = 10_000)]
    public async Task Dispose_leaves_a_successor_socket_file_alone()
    {
        string path = _sockets.NewPath("succ");
        HybridVsockListener listener = StartListener(path);
        File.Delete(path);
        using Socket successor = UnixTestSockets.Listen(path);
        await listener.DisposeAsync();
        Assert.True(File.Exists(path));
    }

    [Fact(Timeout = 10_000)]
    public async Task SeqPacket_listener_reads_one_message_and_replies_with_one_message()
    {
        string uds = _sockets.NewPath("uds");
        string path = UnixBackendPaths.SeqPacketListenerPath(uds);
        Assert.Equal(uds + ".seqpacket", path);
        await using HybridVsockListener listener = StartListener(path, type: VsockType.SeqPacket);
        using Socket host = await UnixTestSockets.ConnectAsync(path, SocketType.Seqpacket);
        await host.SendAsync("CONNECT 40\n"u8.ToArray());
        using HostConnectRequest request = await TakeAsync(listener);
        Assert.Equal(40u, request.Port);
        Assert.Equal(VsockType.SeqPacket, request.Type);
        Assert.True(request.Accept(2000).IsOk);
        byte[] reply = new byte[64];
        int n = await host.ReceiveAsync(reply);
        Assert.Equal("OK 2000\n", Encoding.ASCII.GetString(reply, 0, n));

        using Socket device = request.Socket;
        UnixSocketIo.ConfigureForDataPath(device);
        await host.SendAsync("one"u8.ToArray());
        await host.SendAsync("two!"u8.ToArray());
        Assert.True((await SocketWait.ReadableAsync(device, Ct)).IsOk);
        byte[] buffer = new byte[16];
        Assert.Equal(3, UnixSocketIo.ReceiveMessage(device, buffer).Bytes);
        Assert.True(await UnixTestSockets.EventuallyAsync(() => UnixSocketIo.PeekMessage(device).IsOk));
        Assert.Equal(4, UnixSocketIo.ReceiveMessage(device, buffer).MessageLength);
    }

    [Theory(Timeout = 10_000)]
    [InlineData("CONNECT 40\nextra", HandshakeFailure.MessageNotOneLine)]
    [InlineData("CONNECT 40", HandshakeFailure.MessageNotOneLine)]
    [InlineData("CONNECT 40\n                                                    ", HandshakeFailure.CommandTooLong)]
    [InlineData("HELLO\n", HandshakeFailure.InvalidCommand)]
    [InlineData("", HandshakeFailure.EndOfStream)]
    public async Task SeqPacket_listener_rejects_messages_that_are_not_exactly_one_line(string message, object expectedFailure)
    {
        var failure = (HandshakeFailure)expectedFailure; // internal enum, boxed
        var seen = new TaskCompletionSource<HandshakeFailure>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using HybridVsockListener listener = StartListener(UnixBackendPaths.SeqPacketListenerPath(_sockets.NewPath("u")), type: VsockType.SeqPacket, failed: (f, _) => seen.TrySetResult(f));
        using Socket host = await UnixTestSockets.ConnectAsync(listener.Path, SocketType.Seqpacket);
        await host.SendAsync(Encoding.ASCII.GetBytes(message));
        Assert.Equal(failure, await seen.Task.WaitAsync(TimeSpan.FromSeconds(5), Ct));
        Assert.Empty(await UnixTestSockets.ReadToEndAsync(host));
    }

    [Fact(Timeout = 20_000)]
    public async Task Keeps_serving_through_a_mixed_flood_of_hostile_and_good_peers()
    {
        await using HybridVsockListener listener = StartListener(handshakeTimeout: TimeSpan.FromSeconds(3), maxPending: 8);
        string[] bad = ["GARBAGE\n", "CONNECT\n", "CONNECT 1 2\n", "connect 99999999999\n", new string(' ', 40)];
        const int rounds = 40;
        await Parallel.ForAsync(0, rounds, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = Ct }, async (i, ct) =>
        {
            using (Socket hostile = await UnixTestSockets.ConnectAsync(listener.Path))
            {
                try
                {
                    await hostile.SendAsync(Encoding.ASCII.GetBytes(bad[i % bad.Length]), SocketFlags.None, ct);
                }
                catch (SocketException)
                {
                }
            }

            using (Socket quitter = await UnixTestSockets.ConnectAsync(listener.Path))
            {
                await quitter.SendAsync("CONN"u8.ToArray(), SocketFlags.None, ct);
            }

            using Socket good = await UnixTestSockets.ConnectAsync(listener.Path);
            await good.SendAsync(Encoding.ASCII.GetBytes($"CONNECT {i}\n"), SocketFlags.None, ct);
        });

        var ports = new HashSet<uint>();
        for (int i = 0; i < rounds; i++)
        {
            using HostConnectRequest request = await TakeAsync(listener);
            ports.Add(request.Port);
        }

        Assert.Equal(rounds, ports.Count);
        Assert.True(await UnixTestSockets.EventuallyAsync(() => listener.Counters.Failed == 2 * rounds));
        HybridVsockListenerCounters counters = listener.Counters;
        Assert.Equal(3 * rounds, counters.Accepted);
        Assert.Equal(rounds, counters.InvalidCommand + counters.CommandTooLong);
        Assert.Equal(rounds, counters.EndOfStream);
        Assert.Equal(rounds, counters.Delivered);
        Assert.True(await UnixTestSockets.EventuallyAsync(() => listener.Counters.PendingHandshakes == 0));
    }

    [Fact]
    public void Rejects_nonsense_options()
    {
        string path = _sockets.NewPath("opt");
        Assert.ThrowsAny<ArgumentOutOfRangeException>(() => HybridVsockListener.TryStart(new HybridVsockListenerOptions { Path = path, HandshakeTimeout = TimeSpan.Zero }, out _));
        Assert.ThrowsAny<ArgumentOutOfRangeException>(() => HybridVsockListener.TryStart(new HybridVsockListenerOptions { Path = path, HandshakeTimeout = TimeSpan.FromDays(30) }, out _));
        Assert.ThrowsAny<ArgumentOutOfRangeException>(() => HybridVsockListener.TryStart(new HybridVsockListenerOptions { Path = path, MaxPendingHandshakes = 0 }, out _));
        Assert.ThrowsAny<ArgumentOutOfRangeException>(() => HybridVsockListener.TryStart(new HybridVsockListenerOptions { Path = path, MaxQueuedRequests = 0 }, out _));
        Assert.ThrowsAny<ArgumentOutOfRangeException>(() => HybridVsockListener.TryStart(new HybridVsockListenerOptions { Path = path, SocketType = (VsockType)7 }, out _));
        Assert.False(File.Exists(path));
    }
}
