using System.Globalization;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Grpc.Net.Client;
using VhostUserVsock.Tests.Guest;
using Vsock.Net;
using VsockAgent.Grpc;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// Vsock.Net with real guests: the NativeAOT guest agent (tests/guest/vsock-agent, in the
/// <c>&lt;suite&gt;-dotnet</c> images that tests/guest/build-dotnet-guest.sh makes) serves ASP.NET Core and
/// gRPC on vsock (<c>ListenVsock</c>); the host calls it with <see cref="HttpClient"/> and
/// <c>Grpc.Net.Client</c> through the daemon's uds_path (<see cref="VsockHttpHandler.ForHybridVsock"/>);
/// the guest's <see cref="HttpClient"/> calls a host Kestrel on uds_path_P over <see cref="VsockEndPoint"/>;
/// SEQPACKET through <see cref="VsockListener"/> keeps message boundaries; and the plain
/// <see cref="Socket"/> API (ConnectAsync, Bind, Listen, AcceptAsync) works with <see cref="VsockEndPoint"/>.
/// One boot per kernel.
/// </summary>
[Collection(RealGuestCollection.Name)]
public sealed class DotNetGuestTests(ITestOutputHelper output)
{
    private const uint HttpPort = 8080;
    private const uint GrpcPort = 8081;
    private const uint HostKestrelPort = 6100;
    private const uint SocketApiHostPort = 6101;
    private const uint SocketApiGuestPort = 5201;
    private const uint SeqPort = 5200;
    private const int PostBytes = 16 << 20;

    [Theory]
    [InlineData(GuestSuite.Bookworm)]
    [InlineData(GuestSuite.Trixie)]
    [InlineData(NewerKernelGuestTests.Sid)]
    public async Task Http_grpc_seqpacket_and_socket_api_with_the_dotnet_agent(string suite)
    {
        var image = RealGuestEnvironment.Require(suite + "-dotnet");
        var ct = TestContext.Current.CancellationToken;
        await using var daemon = await DaemonProcess.StartAsync(cancellationToken: ct);
        var report = await GuestRun.RunAsync(
            image,
            daemon,
            [GuestServesHttpAndGrpc(daemon), GuestCallsHostKestrel(), SeqPacketKeepsBoundaries(), SocketApi()],
            timeout: TimeSpan.FromSeconds(240),
            commandTimeout: TimeSpan.FromSeconds(180),
            ct);
        output.WriteLine(report.Summary());
        report.AssertClean();
        var failures = report.Scenarios.Values.Where(s => !s.Passed).Select(s => $"{suite} {s.Name}: {s.Failure}").ToList();
        Assert.True(failures.Count == 0, string.Join("\n\n", failures));
    }

    /// <summary>Host HttpClient and gRPC client -> daemon uds_path -> guest Kestrel on vsock 8080/8081.</summary>
    private static GuestScenario GuestServesHttpAndGrpc(DaemonProcess daemon) => new()
    {
        Name = "serve",
        Description = "guest ASP.NET Core (ListenVsock) called by host HttpClient and gRPC through uds_path",
        Commands = [new GuestCommand("serve", "vsock-agent serve", Background: true)],
        Timeout = TimeSpan.FromSeconds(180),
        Host = async ctx =>
        {
            await ctx.WaitListeningAsync("serve");
            using var http = new HttpClient(VsockHttpHandler.ForHybridVsock(ctx.UdsPath, HttpPort)) { BaseAddress = new Uri("http://guest") };
            string hello = await http.GetStringAsync("/hello", ctx.Cancellation);
            ctx.Log("GET /hello: " + hello);
            ctx.Check(hello.StartsWith($"hello from the guest cid={daemon.GuestCid} ", StringComparison.Ordinal), $"GET /hello answered '{hello}'");

            byte[] body = new byte[PostBytes];
            new Random(1234).NextBytes(body);
            string expected = Convert.ToHexStringLower(SHA256.HashData(body));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using (var response = await http.PostAsync("/sha256", new ByteArrayContent(body), ctx.Cancellation))
            {
                string answer = await response.Content.ReadAsStringAsync(ctx.Cancellation);
                ctx.Metric("post_16MiB_ms", clock.Elapsed.TotalMilliseconds);
                ctx.Check(response.IsSuccessStatusCode, $"POST /sha256: {(int)response.StatusCode} {answer}");
                ctx.Check(answer == $"{expected} {PostBytes}", $"POST /sha256 answered '{answer}', expected '{expected} {PostBytes}'");
            }

            using var channel = GrpcChannel.ForAddress("http://guest", new GrpcChannelOptions { HttpHandler = VsockHttpHandler.ForHybridVsock(ctx.UdsPath, GrpcPort) });
            var client = new Agent.AgentClient(channel);
            byte[] payload = body.AsSpan(0, 1 << 20).ToArray();
            HashReply reply = await client.HashAsync(new HashRequest { Payload = Google.Protobuf.ByteString.CopyFrom(payload) }, cancellationToken: ctx.Cancellation);
            ctx.Log($"gRPC Hash: {reply.Sha256} cid={reply.Cid} kernel={reply.Kernel}");
            ctx.Check(reply.Sha256 == Convert.ToHexStringLower(SHA256.HashData(payload)), $"gRPC Hash answered {reply.Sha256}");
            ctx.Check(reply.Cid == daemon.GuestCid, $"gRPC Hash cid {reply.Cid}, expected {daemon.GuestCid}");

            using var call = client.Count(new CountRequest { Count = 200, Size = 3000 }, cancellationToken: ctx.Cancellation);
            uint next = 0;
            while (await call.ResponseStream.MoveNext(ctx.Cancellation))
            {
                CountReply item = call.ResponseStream.Current;
                ctx.Check(item.Index == next, $"gRPC Count item {item.Index}, expected {next}");
                ctx.Check(item.Payload.Length == 3000 && item.Payload.Span.IndexOfAnyExcept((byte)next) < 0, $"gRPC Count item {next}: bad payload");
                next++;
            }

            ctx.Check(next == 200, $"gRPC Count streamed {next} items, expected 200");
            ctx.Log("gRPC Count: 200 items in order");

            using (var quit = await http.PostAsync("/quit", null, ctx.Cancellation))
                ctx.Check(quit.IsSuccessStatusCode, "POST /quit failed");
            await ctx.ExpectOkAsync("serve");
        },
    };

    /// <summary>Guest HttpClient over VsockEndPoint(2, 6100) -> uds_path_6100 -> a host Kestrel (ListenUnixSocket; the agent run on the host).</summary>
    private static GuestScenario GuestCallsHostKestrel()
    {
        HostAgentProcess? hostKestrel = null;
        return new()
        {
            Name = "guest-http",
            Description = "guest HttpClient (VsockHttpHandler.ForVsock) to a host Kestrel on uds_path_6100",
            Commands = [new GuestCommand("guest-http", $"vsock-agent http-get 2 {HostKestrelPort} /from-guest")],
            Prepare = ctx =>
            {
                hostKestrel = ctx.Own(HostAgentProcess.Start("host-serve", HybridVsockHostListener.PathFor(ctx.UdsPath, HostKestrelPort)));
                hostKestrel.WaitForLineAsync("LISTENING", TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken).GetAwaiter().GetResult();
            },
            Host = async ctx =>
            {
                var result = await ctx.ExpectOkAsync("guest-http");
                string body = await ctx.Guest.WaitForOutputAsync("guest-http", "BODY ", TimeSpan.FromSeconds(5), ctx.Cancellation);
                ctx.Log(body);
                ctx.Check(body.EndsWith("BODY hello guest, this is the host's Kestrel", StringComparison.Ordinal), $"guest saw '{body}'");
                int served = hostKestrel!.Lines.Count(l => l == "REQUEST /from-guest");
                ctx.Check(served == 1, $"host Kestrel served {served} requests, expected 1: {string.Join(" | ", hostKestrel.Lines)}");
                ctx.Check(result.Details == "OK http-get", result.ToString());
            },
        };
    }

    /// <summary>Host SEQPACKET (uds_path.seqpacket) -> guest VsockListener SEQPACKET echo: every message comes back whole.</summary>
    private static GuestScenario SeqPacketKeepsBoundaries() => new()
    {
        Name = "seq",
        Description = "SEQPACKET messages through a guest VsockListener keep their boundaries",
        Commands = [new GuestCommand("seq", $"vsock-agent seq-echo {SeqPort} {ScenarioCatalog.SeqSizesToGuest.Length}", Background: true)],
        Host = async ctx =>
        {
            await ctx.WaitListeningAsync("seq");
            var attempt = await GuestConnector.TryConnectAsync(ctx.UdsPath, SeqPort, SocketType.Seqpacket, ctx.Cancellation);
            ctx.Check(attempt.Socket is not null, $"SEQPACKET CONNECT {SeqPort} failed: {attempt}");
            using Socket socket = attempt.Socket!;
            byte[] buffer = new byte[1 << 17];
            int index = 0;
            foreach (int size in ScenarioCatalog.SeqSizesToGuest)
            {
                byte[] message = new byte[size];
                message.AsSpan().Fill((byte)(index + 1));
                message[0] = (byte)size;
                await socket.SendAsync(message, SocketFlags.None, ctx.Cancellation);
                int n = await socket.ReceiveAsync(buffer, SocketFlags.None, ctx.Cancellation);
                ctx.Check(n == size, $"message {index}: sent {size} bytes, the echo has {n}");
                ctx.Check(buffer.AsSpan(0, n).SequenceEqual(message), $"message {index} ({size} bytes): echo differs");
                string line = await ctx.Guest.WaitForOutputAsync("seq", $"MSG {index} ", TimeSpan.FromSeconds(10), ctx.Cancellation);
                ctx.Check(line.Contains($"MSG {index} {size} ", StringComparison.Ordinal), $"guest received '{line}' for a {size}-byte message");
                index++;
            }

            await ctx.ExpectOkAsync("seq");
            ctx.Log($"{index} messages, each received whole by the guest and echoed whole");
        },
    };

    /// <summary>The Socket API with VsockEndPoint in the guest: ConnectAsync to the host, then Bind/Listen/AcceptAsync.</summary>
    private static GuestScenario SocketApi()
    {
        HybridVsockHostListener? listener = null;
        return new()
        {
            Name = "socket-api",
            Description = "Socket.ConnectAsync/Bind/Listen/AcceptAsync with VsockEndPoint in the guest",
            Commands = [new GuestCommand("socket-api", $"vsock-agent socket-api {SocketApiHostPort} {SocketApiGuestPort}")],
            Prepare = ctx => listener = ctx.Own(new HybridVsockHostListener(ctx.UdsPath, SocketApiHostPort)),
            Host = async ctx =>
            {
                using (Socket fromGuest = await listener!.AcceptAsync(ctx.Cancellation))
                {
                    string line = await ReadLineAsync(fromGuest, ctx.Cancellation);
                    ctx.Check(line == "socket-api hello", $"host got '{line}' from the guest's Socket.ConnectAsync");
                    await fromGuest.SendAsync(Encoding.ASCII.GetBytes("host ok\n"), SocketFlags.None, ctx.Cancellation);
                }

                await ctx.WaitListeningAsync("socket-api");
                using Socket toGuest = await HybridVsockClient.ConnectAsync(ctx.UdsPath, SocketApiGuestPort, cancellationToken: ctx.Cancellation);
                await toGuest.SendAsync(Encoding.ASCII.GetBytes("ping\n"), SocketFlags.None, ctx.Cancellation);
                string reply = await ReadLineAsync(toGuest, ctx.Cancellation);
                ctx.Check(reply == "guest got ping", $"guest's accepted Socket answered '{reply}'");
                await ctx.ExpectOkAsync("socket-api");
                ctx.Log(await ctx.Guest.WaitForOutputAsync("socket-api", "CONNECTED ", TimeSpan.FromSeconds(5), ctx.Cancellation));
            },
        };
    }

    private static async Task<string> ReadLineAsync(Socket socket, CancellationToken token)
    {
        var line = new StringBuilder();
        byte[] one = new byte[1];
        while (line.Length < 256 && await socket.ReceiveAsync(one, SocketFlags.None, token) == 1 && one[0] != (byte)'\n')
            line.Append((char)one[0]);
        return line.ToString();
    }
}
