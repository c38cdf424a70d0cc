using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using VhostUserVsock.Tests.RealGuest;
using VsockLoad;
using VsockLoad.Report;

namespace VhostUserVsock.Tests.Metrics;

/// <summary>
/// <c>--metrics-listen</c> on the real daemon (a child process): Prometheus text over a Unix socket scraped while a
/// simulated guest (bench/VsockLoad: real vhost-user frontend, memfd guest memory) streams through it, with counter
/// values and tags checked against the traffic; a loopback TCP port; and the refusal of a non-loopback address.
/// </summary>
public sealed partial class MetricsEndpointTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact(Timeout = 120_000)]
    public async Task A_scrape_during_real_traffic_shows_the_counters_with_their_tags()
    {
        string directory = Directory.CreateTempSubdirectory("vuvm-").FullName;
        string metricsPath = Path.Join(directory, "metrics.sock");
        await using DaemonProcess daemon = await DaemonProcess.StartAsync(
            guestCid: 7, extraArguments: ["--metrics-listen", "unix:" + metricsPath], cancellationToken: TestContext.Current.CancellationToken);
        Assert.True(await daemon.WaitForLogAsync("Metrics (Prometheus text", Timeout, TestContext.Current.CancellationToken), daemon.Describe());

        string idle = await ScrapeAsync(new UnixDomainSocketEndPoint(metricsPath), "/metrics");
        Assert.Contains("# TYPE vsock_bytes_total counter\n", idle, StringComparison.Ordinal);
        Assert.Equal(0, Sample(idle, "vsock_bytes_total", "direction=\"guest_to_host\",vsock_guest_cid=\"7\""));

        const long count = 32L << 20;
        var options = new LoadOptions
        {
            Mode = LoadMode.GuestToHost,
            WriteSize = 65536,
            Count = count,
            Concurrency = 1,
            MeasureLimit = false,
            Timeout = TimeSpan.FromSeconds(60),
        };
        using var backend = BackendProcess.Attach(daemon.SocketPath, daemon.UdsPath, daemon.ProcessId);
        Task<RunResult> load = Task.Run(() => LoadRunner.Run(options, backend, TextWriter.Null), TestContext.Current.CancellationToken);

        // Scrapes while the stream runs: each one is complete and the byte counter never goes back.
        double last = 0;
        int scrapes = 0;
        while (!load.IsCompleted || scrapes == 0)
        {
            string during = await ScrapeAsync(new UnixDomainSocketEndPoint(metricsPath), "/metrics");
            double bytes = Sample(during, "vsock_bytes_total", "direction=\"guest_to_host\",vsock_guest_cid=\"7\"");
            Assert.True(bytes >= last, $"the counter went back from {last} to {bytes}");
            last = bytes;
            scrapes++;
        }

        RunResult result = await load;
        Assert.True(result.Violations == 0 && result.Measured == count, $"{result}\n{daemon.Describe()}");

        string after = await ScrapeAsync(new UnixDomainSocketEndPoint(metricsPath), "/metrics?x=1");
        Assert.True(Sample(after, "vsock_bytes_total", "direction=\"guest_to_host\",vsock_guest_cid=\"7\"") >= count, after);
        Assert.True(Sample(after, "vsock_packets_total", "direction=\"guest_to_host\",vsock_guest_cid=\"7\"") >= count / 65536, after);
        Assert.True(Sample(after, "vsock_connections_opened_total", "vsock_guest_cid=\"7\"") >= 1, after);
        Assert.Contains("# TYPE vsock_connections_live gauge\n", after, StringComparison.Ordinal);
        Assert.Contains("# HELP vsock_bytes_total Payload bytes through the device's data queues (By)\n", after, StringComparison.Ordinal);
        Assert.DoesNotContain("vsock_guest_cid=\"3\"", after, StringComparison.Ordinal);
    }

    [Fact(Timeout = 90_000)]
    public async Task Loopback_tcp_serves_metrics_and_404_elsewhere()
    {
        await using DaemonProcess daemon = await DaemonProcess.StartAsync(
            extraArguments: ["--metrics-listen", "127.0.0.1:0"], cancellationToken: TestContext.Current.CancellationToken);
        Assert.True(await daemon.WaitForLogAsync("/metrics", Timeout, TestContext.Current.CancellationToken), daemon.Describe());
        Match bound = BoundPort().Match(daemon.Log);
        Assert.True(bound.Success, daemon.Describe());
        var endPoint = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, int.Parse(bound.Groups[1].Value, CultureInfo.InvariantCulture));

        string metrics = await ScrapeAsync(endPoint, "/metrics");
        Assert.Equal(0, Sample(metrics, "vsock_connections_live", "peer=\"host\",vsock_guest_cid=\"3\""));
        string missing = await ScrapeAsync(endPoint, "/other", expectedStatus: "404");
        Assert.Contains("not found", missing, StringComparison.Ordinal);
    }

    private static double Sample(string text, string name, string labels)
    {
        string prefix = $"{name}{{{labels}}} ";
        string? line = text.Split('\n').FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
        Assert.True(line is not null, $"no sample {prefix.Trim()} in:\n{text}");
        return double.Parse(line[prefix.Length..], CultureInfo.InvariantCulture);
    }

    /// <summary>One HTTP/1.1 GET, as Prometheus sends it; returns the body after checking the status.</summary>
    private static async Task<string> ScrapeAsync(System.Net.EndPoint endPoint, string target, string expectedStatus = "200")
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(Timeout);
        using var socket = endPoint is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endPoint, cts.Token);
        await socket.SendAsync(Encoding.ASCII.GetBytes($"GET {target} HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n"), SocketFlags.None, cts.Token);
        var reply = new MemoryStream();
        byte[] buffer = new byte[16384];
        int n;
        while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token)) > 0)
        {
            reply.Write(buffer, 0, n);
        }

        string text = Encoding.UTF8.GetString(reply.ToArray());
        int split = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(split > 0, $"no HTTP head in: {text}");
        string head = text[..split];
        string body = text[(split + 4)..];
        Assert.StartsWith($"HTTP/1.1 {expectedStatus} ", head, StringComparison.Ordinal);
        Match length = ContentLength().Match(head);
        Assert.True(length.Success && int.Parse(length.Groups[1].Value, CultureInfo.InvariantCulture) == Encoding.UTF8.GetByteCount(body), head);
        if (expectedStatus == "200")
        {
            Assert.Contains("Content-Type: text/plain; version=0.0.4", head, StringComparison.Ordinal);
        }

        return body;
    }

    [GeneratedRegex(@"served on 127\.0\.0\.1:(\d+)/metrics")]
    private static partial Regex BoundPort();

    [GeneratedRegex(@"Content-Length: (\d+)")]
    private static partial Regex ContentLength();
}
