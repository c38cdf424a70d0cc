using System.Globalization;
using System.Net.Sockets;
using System.Text;
using VhostUserVsock.Tests.Guest;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// The real-guest scenarios. Each pairs vsocktest commands in the guest with a host peer over
/// the daemon's Unix sockets and checks both ends: byte counts, the pattern, CRC-32 on both
/// sides, message boundaries, errors and their timing.
/// </summary>
public static partial class ScenarioCatalog
{
    /// <summary>VMADDR_CID_HOST.</summary>
    public const string HostCid = "2";

    /// <summary>The SEQPACKET message sizes (guest->host messages must fit the daemon's 64 KiB buf_alloc).</summary>
    public static readonly int[] SeqSizes = [1, 2, 7, 100, 1000, 4095, 4096, 4097, 8192, 16384, 32768, 40000, 65535, 65536, 3, 60000, 1];

    /// <summary>
    /// The host->guest SEQPACKET sizes. The guest echoes each message, and Linux refuses to send a
    /// message larger than its peer's buf_alloc (the daemon's tx-buffer-size, 64 KiB; the guest's
    /// send fails with ENOMEM on 6.1), so these stay within 64 KiB too; each still spans up to 16
    /// of the guest's 4 KiB RX buffers.
    /// </summary>
    public static readonly int[] SeqSizesToGuest = [1, 2, 7, 100, 1000, 4095, 4096, 4097, 16384, 40000, 65536, 3, 65535, 12345, 32768, 1];

    private const int MaxMessage = 1 << 20;

    /// <summary>Guest connects to host port <paramref name="port"/>; the host echoes; the guest checks the echo.</summary>
    public static GuestScenario EchoGuestToHost(string name, uint port, long bytes) => new()
    {
        Name = name,
        Description = $"guest->host echo of {bytes} bytes (guest connects to CID 2 port {port} = uds-path_{port})",
        Commands = [Cmd(name, "-t", "20", "echo-client", HostCid, port, bytes)],
        Prepare = ctx => ctx.Listen(port),
        Host = async ctx =>
        {
            using var conn = await ctx.Listener(port).AcceptAsync(ctx.Cancellation);
            ctx.Log("accepted the guest's connection");
            long echoed = await HostStreams.EchoToEndAsync(conn, ctx.Cancellation);
            ctx.Log($"echoed {echoed} bytes, then end of stream from the guest");
            conn.Dispose();
            var r = await ctx.ExpectOkAsync(name);
            ctx.Check(echoed == bytes, $"host echoed {echoed} bytes, expected {bytes}");
            ctx.Check(r.Bytes == bytes, $"guest reports bytes={r.Bytes}, expected {bytes}");
            ctx.Check(r.Crc32 == VsockPattern.Crc32Of(bytes, 0), $"guest crc32={r.Value("crc32")}, expected {VsockPattern.Crc32Of(bytes, 0):x8}");
        },
    };

    /// <summary>Host connects to a guest echo server (CONNECT/OK) and checks the echo.</summary>
    public static GuestScenario EchoHostToGuest(string name, uint port, long bytes) => new()
    {
        Name = name,
        Description = $"host->guest echo of {bytes} bytes (CONNECT {port} on uds-path)",
        Commands = [Cmd(name, "-a", "60", "-t", "20", "echo-server", port)],
        Host = async ctx =>
        {
            await ctx.WaitListeningAsync(name);
            var attempt = await GuestConnector.ConnectAsync(ctx.UdsPath, port, SocketType.Stream, ctx.Cancellation);
            using var conn = attempt.Socket!;
            ctx.Log($"CONNECT {port} -> OK {attempt.LocalPort} after {attempt.Elapsed.TotalMilliseconds:0} ms");
            var (sent, received) = await HostStreams.EchoClientAsync(conn, bytes, 0, ctx.Cancellation);
            ctx.Log($"sent {sent}; echo {received}");
            conn.Dispose();
            var r = await ctx.ExpectOkAsync(name);
            ctx.Check(received.Bytes == bytes, $"host got {received.Bytes} echoed bytes, expected {bytes}");
            ctx.Check(received.MismatchAt < 0, $"echo differs from the pattern at offset {received.MismatchAt}");
            ctx.Check(received.Crc32 == sent.Crc32, $"echo crc32 {received.Crc32Hex} != sent {sent.Crc32Hex}");
            ctx.Check(r.Bytes == bytes, $"guest server reports bytes={r.Bytes}, expected {bytes}");
            ctx.Check(attempt.LocalPort != 0, "OK with local port 0");
        },
    };

    /// <summary>Guest sends <paramref name="bytes"/> to the host; CRC-32 compared on both ends; MiB/s from both sides.</summary>
    public static GuestScenario BulkGuestToHost(string name, uint port, long bytes) => new()
    {
        Name = name,
        Description = $"{bytes / 1048576.0:0.##} MiB guest->host",
        Commands = [Cmd(name, "-t", "30", "-T", "170", "send", HostCid, port, bytes)],
        Prepare = ctx => ctx.Listen(port),
        Host = async ctx =>
        {
            using var conn = await ctx.Listener(port).AcceptAsync(ctx.Cancellation);
            ctx.Log("accepted the guest's connection");
            var got = await HostStreams.ReceiveToEndAsync(conn, 0, ctx.Cancellation);
            ctx.Log($"host received {got}");
            conn.Dispose(); // the guest waits for this close
            var r = await ctx.ExpectOkAsync(name);
            ctx.Metric("host_mibps", got.MiBPerSecond);
            ctx.Metric("guest_mibps", Mibps(r));
            ctx.Check(got.Bytes == bytes, $"host received {got.Bytes} bytes, expected {bytes}");
            ctx.Check(got.MismatchAt < 0, $"received data differs from the pattern at offset {got.MismatchAt}");
            ctx.Check(r.Bytes == bytes, $"guest reports bytes={r.Bytes}, expected {bytes}");
            ctx.Check(r.Crc32 == got.Crc32, $"CRC-32 differs: guest sent {r.Value("crc32")}, host received {got.Crc32Hex}");
        },
    };

    /// <summary>Host sends <paramref name="bytes"/> to a guest server; CRC-32 compared on both ends; MiB/s from both sides.</summary>
    public static GuestScenario BulkHostToGuest(string name, uint port, long bytes) => new()
    {
        Name = name,
        Description = $"{bytes / 1048576.0:0.##} MiB host->guest",
        Commands = [Cmd(name, "-a", "60", "-t", "30", "-T", "170", "recv-server", port, bytes)],
        Host = async ctx =>
        {
            await ctx.WaitListeningAsync(name);
            var attempt = await GuestConnector.ConnectAsync(ctx.UdsPath, port, SocketType.Stream, ctx.Cancellation);
            using var conn = attempt.Socket!;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var sent = await HostStreams.SendPatternAsync(conn, bytes, 0, shutdown: true, ctx.Cancellation);
            ctx.Log($"host sent {sent}");
            var back = await HostStreams.ReceiveToEndAsync(conn, null, ctx.Cancellation);
            var total = clock.Elapsed;
            ctx.Log($"guest closed after {total.TotalMilliseconds:0} ms ({back.Bytes} bytes back)");
            conn.Dispose();
            var r = await ctx.ExpectOkAsync(name);
            ctx.Metric("host_mibps", bytes / 1048576.0 / total.TotalSeconds);
            ctx.Metric("guest_mibps", Mibps(r));
            ctx.Check(back.Bytes == 0, $"the guest sent {back.Bytes} bytes back");
            ctx.Check(r.Bytes == bytes, $"guest received bytes={r.Bytes}, expected {bytes}");
            ctx.Check(r.Crc32 == sent.Crc32, $"CRC-32 differs: host sent {sent.Crc32Hex}, guest received {r.Value("crc32")}");
        },
    };

    /// <summary>Guest SEQPACKET client to a host SOCK_SEQPACKET listener at uds-path_PORT; each message echoed as one.</summary>
    public static GuestScenario SeqPacketGuestToHost(string name, uint port, IReadOnlyList<int> sizes) => new()
    {
        Name = name,
        Description = $"SEQPACKET guest->host, {sizes.Count} messages of {sizes.Min()}..{sizes.Max()} bytes, echoed",
        Commands = [Cmd(name, [.. new object[] { "-t", "20", "seq-client", HostCid, port }, .. sizes.Cast<object>()])],
        Prepare = ctx => ctx.Listen(port, SocketType.Seqpacket),
        Host = async ctx =>
        {
            using var conn = await ctx.Listener(port).AcceptAsync(ctx.Cancellation);
            ctx.Log("accepted the guest's SEQPACKET connection");
            var buffer = new byte[MaxMessage];
            int i = 0;
            while (true)
            {
                int n = await conn.ReceiveAsync(buffer, SocketFlags.None, ctx.Cancellation);
                if (n == 0)
                    break;
                ctx.Check(i < sizes.Count, $"message {i} ({n} bytes) is one more than the guest sent");
                ctx.Check(n == sizes[i], $"message {i}: the host received {n} bytes, the guest sent one message of {sizes[i]}: boundaries lost");
                int bad = VsockPattern.FindMismatch(buffer.AsSpan(0, n), 0, (uint)i);
                ctx.Check(bad < 0, $"message {i}: content differs at {bad}");
                int w = await conn.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, ctx.Cancellation);
                ctx.Check(w == n, $"message {i}: echo sent {w} of {n} bytes");
                i++;
            }
            ctx.Log($"host received and echoed {i} messages, then end of stream");
            conn.Dispose();
            var r = await ctx.ExpectOkAsync(name);
            ctx.Check(i == sizes.Count, $"host received {i} messages, the guest sent {sizes.Count}");
            ctx.Check(r.Value("msgs") == sizes.Count.ToString(CultureInfo.InvariantCulture), $"guest reports msgs={r.Value("msgs")}, expected {sizes.Count}");
        },
    };

    /// <summary>Host SEQPACKET client (CONNECT over uds-path.seqpacket) to a guest SEQPACKET echo server.</summary>
    public static GuestScenario SeqPacketHostToGuest(string name, uint port, IReadOnlyList<int> sizes) => new()
    {
        Name = name,
        Description = $"SEQPACKET host->guest, {sizes.Count} messages of {sizes.Min()}..{sizes.Max()} bytes, echoed",
        Commands = [Cmd(name, "-a", "60", "-t", "20", "seq-echo-server", port)],
        Host = async ctx =>
        {
            await ctx.WaitListeningAsync(name);
            var attempt = await GuestConnector.ConnectAsync(ctx.UdsPath, port, SocketType.Seqpacket, ctx.Cancellation);
            using var conn = attempt.Socket!;
            ctx.Log($"CONNECT {port} over {Virtio.Vsock.Backends.Unix.UnixBackendPaths.SeqPacketListenerPath(ctx.UdsPath)} -> OK {attempt.LocalPort}");
            var buffer = new byte[MaxMessage];
            int next = 0;
            while (next < sizes.Count)
            {
                // bursts of up to 128 KiB (or one bigger message) queued before reading their echoes
                int first = next;
                long burst = 0;
                do
                {
                    var msg = VsockPattern.Create(sizes[next], (uint)next);
                    int w = await conn.SendAsync(msg, SocketFlags.None, ctx.Cancellation);
                    ctx.Check(w == msg.Length, $"message {next}: sent {w} of {msg.Length} bytes");
                    burst += msg.Length;
                    next++;
                }
                while (next < sizes.Count && burst + sizes[next] <= 128 * 1024);
                for (int i = first; i < next; i++)
                {
                    int n = await conn.ReceiveAsync(buffer, SocketFlags.None, ctx.Cancellation);
                    ctx.Check(n != 0, $"end of stream before the echo of message {i}");
                    ctx.Check(n == sizes[i], $"echo of message {i}: {n} bytes in one message, sent {sizes[i]}: boundaries lost");
                    int bad = VsockPattern.FindMismatch(buffer.AsSpan(0, n), 0, (uint)i);
                    ctx.Check(bad < 0, $"echo of message {i}: content differs at {bad}");
                }
            }
            ctx.Log($"{sizes.Count} messages echoed with their boundaries");
            conn.Shutdown(SocketShutdown.Send);
            int end = await conn.ReceiveAsync(buffer, SocketFlags.None, ctx.Cancellation);
            ctx.Check(end == 0, $"expected end of stream after the last echo, got {end} bytes");
            conn.Dispose();
            var r = await ctx.ExpectOkAsync(name);
            ctx.Check(r.Value("msgs") == sizes.Count.ToString(CultureInfo.InvariantCulture), $"guest reports msgs={r.Value("msgs")}, expected {sizes.Count}");
        },
    };

    /// <summary>Guest sends, shuts down its write side, and still receives the host's reply.</summary>
    public static GuestScenario HalfCloseGuestToHost(string name, uint port, long bytes) => new()
    {
        Name = name,
        Description = "half-close: guest shuts down writing, host still answers",
        Commands = [Cmd(name, "-t", "20", "halfclose-client", HostCid, port, bytes)],
        Prepare = ctx => ctx.Listen(port),
        Host = async ctx =>
        {
            using var conn = await ctx.Listener(port).AcceptAsync(ctx.Cancellation);
            var got = await HostStreams.ReceiveToEndAsync(conn, 0, ctx.Cancellation);
            ctx.Log($"host read to end of stream (the guest's SHUT_WR): {got}");
            var reply = $"GOT {got.Bytes} {got.Crc32Hex}\n";
            await HostStreams.SendAllAsync(conn, Encoding.ASCII.GetBytes(reply), ctx.Cancellation);
            ctx.Log("host replied after the guest's shutdown: " + reply.TrimEnd());
            conn.Shutdown(SocketShutdown.Send);
            conn.Dispose();
            var r = await ctx.ExpectOkAsync(name);
            ctx.Check(got.Bytes == bytes && got.MismatchAt < 0, $"host got {got}, expected {bytes} pattern bytes");
            ctx.Check(r.Crc32 == got.Crc32, $"guest crc32={r.Value("crc32")}, host {got.Crc32Hex}");
        },
    };

    /// <summary>Host sends, shuts down its write side, and still receives the guest's reply.</summary>
    public static GuestScenario HalfCloseHostToGuest(string name, uint port, long bytes) => new()
    {
        Name = name,
        Description = "half-close: host shuts down writing, guest still answers",
        Commands = [Cmd(name, "-a", "60", "-t", "20", "halfclose-server", port)],
        Host = async ctx =>
        {
            await ctx.WaitListeningAsync(name);
            var attempt = await GuestConnector.ConnectAsync(ctx.UdsPath, port, SocketType.Stream, ctx.Cancellation);
            using var conn = attempt.Socket!;
            var sent = await HostStreams.SendPatternAsync(conn, bytes, 0, shutdown: true, ctx.Cancellation);
            ctx.Log($"host sent {sent} and shut down writing");
            var reply = new MemoryStream();
            var buffer = new byte[256];
            int n;
            while ((n = await conn.ReceiveAsync(buffer, SocketFlags.None, ctx.Cancellation)) > 0)
                reply.Write(buffer, 0, n);
            var text = Encoding.ASCII.GetString(reply.ToArray());
            ctx.Log($"host read the reply '{text.TrimEnd()}' and end of stream");
            conn.Dispose();
            var r = await ctx.ExpectOkAsync(name);
            ctx.Check(text == $"GOT {bytes} {sent.Crc32Hex}\n", $"reply '{text.ReplaceLineEndings("\\n")}', expected 'GOT {bytes} {sent.Crc32Hex}\\n'");
        },
    };

    /// <summary>
    /// Guest connects to a host port with no listener (<paramref name="stale"/>: a socket file nobody
    /// listens on; else no file at all): the guest must see ECONNRESET within <paramref name="maxMs"/>.
    /// </summary>
    public static GuestScenario RefusedGuestToHost(string name, uint port, bool stale, int maxMs = 1000) => new()
    {
        Name = name,
        Description = stale ? "guest connect to a stale uds-path_PORT socket: reset fast" : "guest connect to a host port with no uds-path_PORT: reset fast",
        Commands = [Cmd(name, "-t", "20", "connect-refused", HostCid, port, maxMs)],
        Prepare = ctx =>
        {
            var path = Virtio.Vsock.Backends.Unix.UnixBackendPaths.HostPortPath(ctx.UdsPath, port);
            if (File.Exists(path))
                throw new InvalidOperationException($"{path} exists");
            if (stale)
                CreateStaleSocket(path);
        },
        Host = async ctx =>
        {
            var r = await ctx.ExpectOkAsync(name);
            ctx.Metric("guest_ms", double.Parse(r.Value("ms") ?? "-1", CultureInfo.InvariantCulture));
            ctx.Check(r.Value("errno") == "ECONNRESET", $"guest connect failed with {r.Value("errno")}, expected ECONNRESET (RST from the device)");
        },
    };

    /// <summary>
    /// Host CONNECTs to a guest port nobody listens on: the host socket must close without OK within
    /// <paramref name="maxMs"/>. A guest recv-server on <paramref name="gatePort"/> marks the window.
    /// </summary>
    public static GuestScenario RefusedHostToGuest(string name, uint port, uint gatePort, int maxMs = 1000) => new()
    {
        Name = name,
        Description = "host CONNECT to a guest port nobody listens on: host socket closed fast",
        Commands = [Cmd(name, "-a", "60", "-t", "20", "recv-server", gatePort, 0)],
        Host = async ctx =>
        {
            await ctx.WaitListeningAsync(name);
            var attempt = await GuestConnector.TryConnectAsync(ctx.UdsPath, port, SocketType.Stream, ctx.Cancellation);
            attempt.Socket?.Dispose();
            ctx.Log($"CONNECT {port}: {(attempt.Connected ? "OK " + attempt.LocalPort : attempt.Failure)} after {attempt.Elapsed.TotalMilliseconds:0} ms");
            ctx.Metric("host_ms", attempt.Elapsed.TotalMilliseconds);
            var gate = await GuestConnector.ConnectAsync(ctx.UdsPath, gatePort, SocketType.Stream, ctx.Cancellation);
            using (var g = gate.Socket!)
            {
                g.Shutdown(SocketShutdown.Send);
                await HostStreams.ReceiveToEndAsync(g, null, ctx.Cancellation);
            }
            await ctx.ExpectOkAsync(name);
            ctx.Check(!attempt.Connected, $"CONNECT {port} got OK {attempt.LocalPort} though nobody listens there");
            ctx.Check(attempt.Elapsed.TotalMilliseconds <= maxMs, $"the host socket closed after {attempt.Elapsed.TotalMilliseconds:0} ms, more than {maxMs} ms");
        },
    };

    /// <summary><paramref name="count"/> concurrent guest clients, each echoed by the host.</summary>
    public static GuestScenario ManyGuestToHost(string name, uint port, int count, long bytes) => new()
    {
        Name = name,
        Description = $"{count} concurrent guest->host connections, {bytes} bytes echoed each",
        Commands = [Cmd(name, "-t", "30", "-T", "170", "many-clients", HostCid, port, count, bytes)],
        Prepare = ctx => ctx.Listen(port),
        Host = async ctx =>
        {
            var listener = ctx.Listener(port);
            var echoes = new List<Task<long>>();
            for (int i = 0; i < count; i++)
            {
                var conn = ctx.Own(await listener.AcceptAsync(ctx.Cancellation));
                echoes.Add(HostStreams.EchoToEndAsync(conn, ctx.Cancellation).ContinueWith(
                    t =>
                    {
                        conn.Dispose();
                        return t.Result;
                    },
                    TaskScheduler.Default));
            }
            ctx.Log($"accepted {count} connections");
            var echoed = await Task.WhenAll(echoes);
            ctx.Log($"echoed {echoed.Sum()} bytes over {count} connections");
            var r = await ctx.ExpectOkAsync(name);
            ctx.Check(echoed.All(e => e == bytes), $"echo sizes differ: {string.Join(',', echoed.Where(e => e != bytes).Take(10))} (expected {bytes} each)");
            ctx.Check(r.Value("ok") == count.ToString(CultureInfo.InvariantCulture), $"guest reports ok={r.Value("ok")} of {count}");
            ctx.Metric("seconds", ctx.Elapsed.TotalSeconds);
        },
    };

    /// <summary><paramref name="count"/> concurrent host clients (CONNECT/OK) to a guest echo server.</summary>
    public static GuestScenario ManyHostToGuest(string name, uint port, int count, long bytes) => new()
    {
        Name = name,
        Description = $"{count} concurrent host->guest connections, {bytes} bytes echoed each",
        Commands = [Cmd(name, "-a", "60", "-t", "30", "-T", "170", "echo-server", port, count)],
        Host = async ctx =>
        {
            await ctx.WaitListeningAsync(name);
            var clients = Enumerable.Range(0, count).Select(async i =>
            {
                var attempt = await GuestConnector.ConnectAsync(ctx.UdsPath, port, SocketType.Stream, ctx.Cancellation);
                using var conn = attempt.Socket!;
                var (_, received) = await HostStreams.EchoClientAsync(conn, bytes, (uint)i, ctx.Cancellation);
                return (i, received);
            }).ToList();
            var results = await Task.WhenAll(clients);
            var bad = results.Where(x => x.received.Bytes != bytes || x.received.MismatchAt >= 0).ToList();
            ctx.Log($"{count - bad.Count} of {count} host clients got their echo back intact");
            var r = await ctx.ExpectOkAsync(name);
            ctx.Check(bad.Count == 0, $"{bad.Count} clients got a bad echo, e.g. client {bad.FirstOrDefault().i}: {bad.FirstOrDefault().received}");
            ctx.Check(r.Value("conns") == count.ToString(CultureInfo.InvariantCulture) && r.Value("ok") == count.ToString(CultureInfo.InvariantCulture),
                $"guest reports conns={r.Value("conns")} ok={r.Value("ok")}, expected {count}");
            ctx.Metric("seconds", ctx.Elapsed.TotalSeconds);
        },
    };

    /// <summary>A guest vsocktest command line from words.</summary>
    public static GuestCommand Cmd(string name, params object[] words) =>
        GuestCommand.Vsocktest(name, [.. words.Select(w => Convert.ToString(w, CultureInfo.InvariantCulture)!)]);

    /// <summary>The guest's <c>mibps=</c>.</summary>
    public static double Mibps(GuestResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return double.TryParse(result.Value("mibps"), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : double.NaN;
    }

    /// <summary>Leaves a socket file at <paramref name="path"/> that nobody listens on (as a crashed host application would).</summary>
    public static void CreateStaleSocket(string path)
    {
        // bind elsewhere and move: the runtime unlinks the path it bound when the socket is disposed
        var bound = path + ".tmp";
        using (var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            s.Bind(new UnixDomainSocketEndPoint(bound));
            s.Listen();
            File.Move(bound, path);
        }
    }
}
