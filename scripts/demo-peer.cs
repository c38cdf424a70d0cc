#:package System.IO.Hashing
// The host side of scripts/demo.sh: a host application talking to the guest through the daemon's
// Unix sockets (the hybrid-vsock convention of Firecracker and vhost-device-vsock).
//   guest -> host: the guest connects to CID 2 port P; the daemon connects to <uds-path>_P, where
//                  this program listens.
//   host -> guest: this program connects to <uds-path>, writes "CONNECT <port>\n" and reads
//                  "OK <host-port>\n"; the stream is then the guest's connection.
// It follows the guest's serial console (the RESULT lines of tests/guest/vsocktest.c) and prints
// both sides of each step. Data is vsocktest's pattern (byte k = (k + seed) % 251), checked by
// the guest; CRC-32 is compared on both ends.
//
// usage: dotnet demo-peer.dll --uds PATH --serial PATH [--bytes N] [--timeout SECONDS]
// exit code: 0 every step passed, 1 a step failed, 2 usage.
using System.Diagnostics;
using System.Globalization;
using System.IO.Hashing;
using System.Net.Sockets;
using System.Text;

string? uds = null, serial = null;
long bulk = 64L << 20;
int timeoutSeconds = 60;
for (int i = 0; i + 1 < args.Length; i += 2)
{
    switch (args[i])
    {
        case "--uds": uds = args[i + 1]; break;
        case "--serial": serial = args[i + 1]; break;
        case "--bytes": bulk = long.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--timeout": timeoutSeconds = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        default: return Usage();
    }
}
if (uds is null || serial is null || args.Length % 2 != 0)
    return Usage();

const uint EchoPort = 5000, SinkPort = 5001, GuestServerPort = 5002;
const int Chunk = 256 * 1024;
using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
var ct = cts.Token;
var console = new SerialFollower(serial);
var follower = console.RunAsync(ct);
bool ok = true;

using var echoListener = Listen(uds + "_" + EchoPort);
using var sinkListener = Listen(uds + "_" + SinkPort);
Say("host", $"listening on {uds}_{EchoPort} (echo) and {uds}_{SinkPort} (sink): guest ports {EchoPort} and {SinkPort} of CID 2");

try
{
    var ready = await console.WaitAsync(l => l.StartsWith("GUEST-READY", StringComparison.Ordinal), ct);
    Say("guest", ready);

    // 1. guest -> host echo
    using (var conn = await echoListener.AcceptAsync(ct))
    {
        Say("host", $"echo: the guest connected to port {EchoPort}; echoing until it shuts down writing");
        var buffer = new byte[Chunk];
        long echoed = 0;
        int n;
        while ((n = await conn.ReceiveAsync(buffer, SocketFlags.None, ct)) > 0)
        {
            await SendAll(conn, buffer.AsMemory(0, n), ct);
            echoed += n;
        }
        conn.Shutdown(SocketShutdown.Send);
        Say("host", $"echo: {echoed} bytes echoed back");
    }
    var echo = await console.ResultAsync("echo", ct);
    ok &= Check(echo, "guest->host echo");

    // 2. guest -> host bulk
    Stats g2h;
    using (var conn = await sinkListener.AcceptAsync(ct))
    {
        Say("host", $"guest->host: the guest connected to port {SinkPort}; reading to end of stream");
        g2h = await Receive(conn, ct);
        Say("host", $"guest->host: {g2h}");
    }
    var g2hGuest = await console.ResultAsync("g2h", ct);
    ok &= Check(g2hGuest, "guest->host transfer");

    // 3. host -> guest bulk
    await console.WaitAsync(l => l.StartsWith("OUT h2g LISTENING", StringComparison.Ordinal), ct);
    Stats h2g;
    using (var conn = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
    {
        await conn.ConnectAsync(new UnixDomainSocketEndPoint(uds), ct);
        await SendAll(conn, Encoding.ASCII.GetBytes($"CONNECT {GuestServerPort}\n"), ct);
        var reply = await ReadLine(conn, ct);
        Say("host", $"host->guest: CONNECT {GuestServerPort} -> {(reply.Length > 0 ? reply : "(closed without OK)")}");
        if (!reply.StartsWith("OK ", StringComparison.Ordinal))
            throw new InvalidOperationException("the daemon refused CONNECT " + GuestServerPort);
        var clock = Stopwatch.StartNew();
        var crc = new Crc32();
        var buffer = new byte[Chunk];
        for (long sent = 0; sent < bulk;)
        {
            int n = (int)Math.Min(Chunk, bulk - sent);
            var chunk = Pattern.Table.AsMemory((int)(sent % 251), n);
            crc.Append(chunk.Span);
            await SendAll(conn, chunk, ct);
            sent += n;
        }
        conn.Shutdown(SocketShutdown.Send);
        await conn.ReceiveAsync(buffer, SocketFlags.None, ct); // the guest closes once it has it all
        h2g = new Stats(bulk, crc.GetCurrentHashAsUInt32(), clock.Elapsed, true);
        Say("host", $"host->guest: {h2g} (until the guest closed)");
    }
    var h2gGuest = await console.ResultAsync("h2g", ct);
    ok &= Check(h2gGuest, "host->guest transfer");

    Console.WriteLine();
    Console.WriteLine($"  {bulk / 1048576.0:0.##} MiB        host MiB/s  guest MiB/s  CRC-32 host  CRC-32 guest");
    ok &= Row("guest -> host", g2h, g2hGuest);
    ok &= Row("host -> guest", h2g, h2gGuest);
    await console.WaitAsync(l => l == "GUEST-DONE", ct);
    Say("guest", "GUEST-DONE (powering off)");
}
catch (OperationCanceledException)
{
    Say("host", $"TIMEOUT: the demo did not finish within {timeoutSeconds} s");
    ok = false;
}
catch (Exception e) when (e is SocketException or InvalidOperationException or IOException)
{
    Say("host", "FAILED: " + e.Message);
    ok = false;
}
await cts.CancelAsync();
try
{
    await follower;
}
catch (OperationCanceledException)
{
}
return ok ? 0 : 1;

static int Usage()
{
    Console.Error.WriteLine("usage: demo-peer --uds PATH --serial PATH [--bytes N] [--timeout SECONDS]");
    return 2;
}

static void Say(string who, string what) => Console.WriteLine($"[{who,-5}] {what}");

static bool Check(string result, string what)
{
    Say("guest", result);
    bool passed = result.Split(' ').ElementAtOrDefault(1) == "0";
    if (!passed)
        Say("host", $"FAILED: {what} failed in the guest");
    return passed;
}

static bool Row(string label, Stats host, string guestResult)
{
    string Value(string key) => guestResult.Split(' ').FirstOrDefault(w => w.StartsWith(key + "=", StringComparison.Ordinal))?[(key.Length + 1)..] ?? "?";
    bool raw = Value("crc32") == "none"; // vsocktest -N (DEMO_RAW=1)
    bool same = (raw || Value("crc32") == host.CrcHex) && host.PatternOk && Value("bytes") == host.Bytes.ToString(CultureInfo.InvariantCulture);
    string verdict = !same ? "DIFFERENT" : raw ? "not checked (raw)" : "equal";
    Console.WriteLine($"  {label}    {host.MiBps,10:0.0}  {Value("mibps"),11}  {host.CrcHex,11}  {Value("crc32"),12}  {verdict}");
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"THROUGHPUT {label.Replace(" ", "", StringComparison.Ordinal)} {host.MiBps:0.0} {Value("mibps")}"));
    return same;
}

static Socket Listen(string path)
{
    File.Delete(path);
    var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    s.Bind(new UnixDomainSocketEndPoint(path));
    s.Listen(16);
    return s;
}

static async Task SendAll(Socket s, ReadOnlyMemory<byte> data, CancellationToken ct)
{
    while (data.Length > 0)
        data = data[await s.SendAsync(data, SocketFlags.None, ct)..];
}

static async Task<string> ReadLine(Socket s, CancellationToken ct)
{
    var line = new StringBuilder();
    var one = new byte[1];
    while (line.Length < 32 && await s.ReceiveAsync(one, SocketFlags.None, ct) == 1 && one[0] != '\n')
        line.Append((char)one[0]);
    return line.ToString();
}

static async Task<Stats> Receive(Socket s, CancellationToken ct)
{
    var clock = Stopwatch.StartNew();
    var crc = new Crc32();
    var buffer = new byte[Chunk];
    long total = 0;
    bool pattern = true;
    int n;
    while ((n = await s.ReceiveAsync(buffer, SocketFlags.None, ct)) > 0)
    {
        crc.Append(buffer.AsSpan(0, n));
        pattern = pattern && buffer.AsSpan(0, n).SequenceEqual(Pattern.Table.AsSpan((int)(total % 251), n));
        total += n;
    }
    return new Stats(total, crc.GetCurrentHashAsUInt32(), clock.Elapsed, pattern);
}

/// <summary>vsocktest's pattern: byte k of a stream is k % 251 (seed 0); any chunk is a slice of the table.</summary>
internal static class Pattern
{
    public static readonly byte[] Table = Enumerable.Range(0, 251 + (256 * 1024)).Select(i => (byte)(i % 251)).ToArray();
}

internal sealed record Stats(long Bytes, uint Crc, TimeSpan Elapsed, bool PatternOk)
{
    public double MiBps => Bytes / 1048576.0 / Elapsed.TotalSeconds;

    public string CrcHex => Crc.ToString("x8", CultureInfo.InvariantCulture);

    public override string ToString() =>
        $"{Bytes} bytes in {Elapsed.TotalSeconds:0.000} s = {MiBps:0.0} MiB/s, CRC-32 {CrcHex}{(PatternOk ? "" : ", PATTERN MISMATCH")}";
}

/// <summary>Follows the guest's serial console file line by line.</summary>
internal sealed class SerialFollower(string path)
{
    private readonly List<string> _lines = [];
    private readonly Lock _gate = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async Task RunAsync(CancellationToken ct)
    {
        while (!File.Exists(path))
            await Task.Delay(50, ct);
        using var reader = new StreamReader(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
        var partial = new StringBuilder();
        var buffer = new char[4096];
        while (true)
        {
            int n = await reader.ReadAsync(buffer, ct);
            if (n == 0)
            {
                await Task.Delay(20, ct);
                continue;
            }
            foreach (char c in buffer.AsSpan(0, n))
            {
                if (c == '\r')
                    continue;
                if (c != '\n')
                {
                    partial.Append(c);
                    continue;
                }
                TaskCompletionSource changed;
                lock (_gate)
                {
                    _lines.Add(partial.ToString());
                    changed = _changed;
                    _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
                partial.Clear();
                changed.TrySetResult();
            }
        }
    }

    public async Task<string> WaitAsync(Func<string, bool> match, CancellationToken ct)
    {
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                var line = _lines.FirstOrDefault(match);
                if (line is not null)
                    return line;
                changed = _changed.Task;
            }
            await changed.WaitAsync(ct);
        }
    }

    public async Task<string> ResultAsync(string name, CancellationToken ct)
    {
        var line = await WaitAsync(l => l.StartsWith($"RESULT {name} ", StringComparison.Ordinal), ct);
        return line["RESULT ".Length..];
    }
}
