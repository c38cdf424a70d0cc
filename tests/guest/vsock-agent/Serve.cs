using System.Security.Cryptography;
using Grpc.Core;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Vsock.Net;
using Vsock.Net.AspNetCore;

namespace VsockAgent;

/// <summary>The guest's web app: a minimal API on vsock port 8080 and the gRPC service on 8081, until POST /quit.</summary>
internal static class Serve
{
    public const uint HttpPort = 8080;
    public const uint GrpcPort = 8081;

    public static async Task<int> RunAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ListenVsock(HttpPort);
        builder.WebHost.ListenVsock(GrpcPort, o => o.Protocols = HttpProtocols.Http2);
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = 64L << 20);
        builder.Services.AddGrpc();
        var app = builder.Build();
        string who = $"cid={VsockSocket.GetLocalCid()} kernel={Environment.OSVersion.Version}";

        app.MapGet("/hello", () => $"hello from the guest {who}");
        app.MapPost("/sha256", async (HttpRequest request) =>
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            byte[] buffer = new byte[64 * 1024];
            long total = 0;
            int n;
            while ((n = await request.Body.ReadAsync(buffer)) > 0)
            {
                hash.AppendData(buffer, 0, n);
                total += n;
            }

            Console.WriteLine($"POST {total} bytes");
            return $"{Convert.ToHexStringLower(hash.GetHashAndReset())} {total}";
        });
        app.MapPost("/quit", (IHostApplicationLifetime lifetime) =>
        {
            lifetime.StopApplication();
            return "bye";
        });
        app.MapGrpcService<AgentService>();
        app.Lifetime.ApplicationStarted.Register(() => Console.WriteLine($"LISTENING http=vsock:{HttpPort} grpc=vsock:{GrpcPort} {who}"));
        await app.RunAsync();
        Console.WriteLine("OK serve");
        return 0;
    }

    /// <summary>On the host: Kestrel on the Unix socket where guest connections to a host port arrive (no vsock code at all).</summary>
    public static async Task<int> RunOnHostAsync(string unixPath)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(unixPath));
        var app = builder.Build();
        app.MapGet("/from-guest", () =>
        {
            Console.WriteLine("REQUEST /from-guest");
            return "hello guest, this is the host's Kestrel";
        });
        app.Lifetime.ApplicationStarted.Register(() => Console.WriteLine($"LISTENING unix:{unixPath}"));
        await app.RunAsync();
        return 0;
    }
}

/// <summary>The gRPC service (agent.proto).</summary>
internal sealed class AgentService : Grpc.Agent.AgentBase
{
    public override Task<Grpc.HashReply> Hash(Grpc.HashRequest request, ServerCallContext context) =>
        Task.FromResult(new Grpc.HashReply
        {
            Sha256 = Convert.ToHexStringLower(SHA256.HashData(request.Payload.Span)),
            Cid = VsockSocket.GetLocalCid(),
            Kernel = Environment.OSVersion.Version.ToString(),
        });

    public override async Task Count(Grpc.CountRequest request, IServerStreamWriter<Grpc.CountReply> responseStream, ServerCallContext context)
    {
        for (uint i = 0; i < Math.Min(request.Count, 10_000u); i++)
        {
            byte[] payload = new byte[Math.Min(request.Size, 1u << 20)];
            payload.AsSpan().Fill((byte)i);
            await responseStream.WriteAsync(new Grpc.CountReply { Index = i, Payload = Google.Protobuf.ByteString.CopyFrom(payload) }, context.CancellationToken);
        }
    }
}
