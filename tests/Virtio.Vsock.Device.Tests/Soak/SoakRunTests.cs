using System.Diagnostics;
using System.Text.Json;

namespace Virtio.Vsock.Device.Tests.Soak;

/// <summary>
/// The CI form of the soak (bench/VsockSoak): 60 seconds of 64 concurrent connections, both directions,
/// every close mode, a frontend reconnect every 20 s, run as its own process (so its fds and RSS are its own),
/// and the end conditions asserted from its SOAK-RESULT line.
/// </summary>
public sealed class SoakRunTests
{
    private static readonly TimeSpan HardLimit = TimeSpan.FromMinutes(6);

    [Fact(Timeout = 420_000)]
    public async Task SixtySecondSoakEndsWithResourcesBackAndEveryOrderlyByteDelivered()
    {
        string tool = Path.Combine(AppContext.BaseDirectory, "VsockSoak.dll");
        Assert.True(File.Exists(tool), $"{tool} is missing (the test project references bench/VsockSoak).");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[] { tool, "--duration", "60s", "--connections", "64", "--reconnect-every", "20s", "--report-every", "20s" })
        {
            start.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(start) ?? throw new InvalidOperationException("could not start the soak");
        Task<string> output = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        Task<string> errors = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        using (var limit = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken))
        {
            limit.CancelAfter(HardLimit);
            try
            {
                await process.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }
        }

        string text = await output;
        string stderr = await errors;
        TestContext.Current.TestOutputHelper?.WriteLine(text);
        string? line = text.Split('\n').LastOrDefault(l => l.StartsWith("SOAK-RESULT ", StringComparison.Ordinal));
        Assert.True(line is not null, $"no SOAK-RESULT line; exit {process.ExitCode}\n{text}\n{stderr}");
        using JsonDocument result = JsonDocument.Parse(line["SOAK-RESULT ".Length..]);
        JsonElement root = result.RootElement;
        JsonElement begin = root.GetProperty("start");
        JsonElement end = root.GetProperty("end");

        Assert.Equal(begin.GetProperty("openFds").GetInt64(), end.GetProperty("openFds").GetInt64());
        Assert.Equal(begin.GetProperty("connections").GetInt64(), end.GetProperty("connections").GetInt64());
        Assert.Equal(begin.GetProperty("bufferedBytes").GetInt64(), end.GetProperty("bufferedBytes").GetInt64());
        Assert.InRange(end.GetProperty("rssBytes").GetInt64() - begin.GetProperty("rssBytes").GetInt64(), long.MinValue, 64L * 1024 * 1024);
        Assert.Equal(0, root.GetProperty("stuck").GetInt64());
        Assert.Equal(0, root.GetProperty("orderlyFailures").GetInt64());
        Assert.Equal(0, root.GetProperty("corrupted").GetInt64());
        Assert.Equal(0, root.GetProperty("connectFailures").GetInt64());
        Assert.Equal(0, root.GetProperty("guestSocketsLeft").GetInt64());
        Assert.True(root.GetProperty("orderlyVerified").GetInt64() > 0);
        Assert.True(root.GetProperty("reconnects").GetInt64() >= 2, "the 60 s form reconnects the frontend at 20 s and 40 s");
        Assert.True(root.GetProperty("passed").GetBoolean(), line);
        Assert.Equal(0, process.ExitCode);
    }
}
