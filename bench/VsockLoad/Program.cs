using System.CommandLine;
using VsockLoad;
using VsockLoad.Report;

// vsockload: a vhost-user frontend + Linux-like guest driver + host peer that loads any vhost-user vsock
// backend and prints one result line per run (see README.md). Exit code 0 = no violation, 1 = violations
// or unfinished, 2 = bad arguments or set-up failure.
var mode = new Option<string>("--mode") { Description = "g2h | h2g | rr | conn", DefaultValueFactory = _ => "g2h" };
mode.AcceptOnlyFromAmong("g2h", "h2g", "rr", "conn");
var write = new Option<int>("--write-size") { Description = "bytes per write (streams) or per connection (conn)", DefaultValueFactory = _ => 64 * 1024 };
var count = new Option<long>("--count") { Description = "bytes to stream (g2h/h2g), round trips (rr) or connections (conn)", DefaultValueFactory = _ => 1L << 30 };
var warmup = new Option<long>("--warmup") { Description = "bytes (streams) or round trips (rr) before the timed window", DefaultValueFactory = _ => 0 };
var concurrency = new Option<int>("--concurrency") { Description = "connections open at once (conn)", DefaultValueFactory = _ => 16 };
var eventIdx = new Option<bool>("--event-idx") { Description = "negotiate VIRTIO_F_EVENT_IDX" };
var backendCommand = new Option<string?>("--backend") { Description = "spawn this backend: a command line with {socket} and {uds} placeholders" };
var socket = new Option<string?>("--socket") { Description = "an already listening backend's vhost-user socket" };
var uds = new Option<string?>("--uds-path") { Description = "that backend's hybrid vsock socket (--uds-path)" };
var pid = new Option<int>("--backend-pid") { Description = "that backend's pid, for CPU time" };
var noLimit = new Option<bool>("--no-limit") { Description = "skip the socketpair limit" };
var timeout = new Option<int>("--timeout") { Description = "seconds the run may take", DefaultValueFactory = _ => 120 };
var port = new Option<uint>("--port") { Description = "the vsock port the mode uses", DefaultValueFactory = _ => 5000 };

var root = new RootCommand("Load generator for vhost-user vsock backends (one result line per run).")
{
    mode, write, count, warmup, concurrency, eventIdx, backendCommand, socket, uds, pid, noLimit, timeout, port,
};
root.SetAction(result =>
{
    var options = new LoadOptions
    {
        Mode = result.GetValue(mode) switch
        {
            "h2g" => LoadMode.HostToGuest,
            "rr" => LoadMode.RequestResponse,
            "conn" => LoadMode.Connections,
            _ => LoadMode.GuestToHost,
        },
        WriteSize = result.GetValue(write),
        Count = result.GetValue(count),
        Warmup = result.GetValue(warmup),
        Concurrency = result.GetValue(concurrency),
        EventIdx = result.GetValue(eventIdx),
        BackendPid = result.GetValue(pid),
        MeasureLimit = !result.GetValue(noLimit),
        Timeout = TimeSpan.FromSeconds(result.GetValue(timeout)),
        Port = result.GetValue(port),
    };
    if (options.WriteSize is < 1 or > 64 * 1024 || options.Count < 1 || options.Warmup < 0 || options.Concurrency < 1)
    {
        Console.Error.WriteLine("vsockload: --write-size must be 1..65536, --count >= 1, --warmup >= 0, --concurrency >= 1");
        return 2;
    }

    string? command = result.GetValue(backendCommand);
    string? socketPath = result.GetValue(socket);
    string? udsPath = result.GetValue(uds);
    if ((command is null) == (socketPath is null || udsPath is null))
    {
        Console.Error.WriteLine("vsockload: give either --backend 'CMD {socket} {uds}' or --socket S --uds-path U [--backend-pid P]");
        return 2;
    }

    try
    {
        using BackendProcess backend = command is not null ? BackendProcess.Spawn(command) : BackendProcess.Attach(socketPath!, udsPath!, options.BackendPid);
        RunResult outcome = LoadRunner.Run(options, backend, Console.Error);
        Console.WriteLine(outcome);
        return outcome.Ok ? 0 : 1;
    }
    catch (Exception e) when (e is IOException or ArgumentException or System.Net.Sockets.SocketException or InvalidOperationException)
    {
        Console.Error.WriteLine($"vsockload: {e.Message}");
        return 2;
    }
});
return root.Parse(args).Invoke();
