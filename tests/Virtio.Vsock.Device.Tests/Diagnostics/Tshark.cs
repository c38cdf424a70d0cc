using System.Diagnostics;

namespace Virtio.Vsock.Device.Tests.Diagnostics;

/// <summary>Runs Wireshark's <c>tshark</c> (Debian package, installed by scripts/install-test-deps.sh) on a capture file.</summary>
internal static class Tshark
{
    /// <summary>The vsockmon and virtio fields read back, in this order, one line per packet.</summary>
    public static readonly string[] Fields =
    [
        "vsock.op", "vsock.virtio.op", "vsock.src_cid", "vsock.dst_cid", "vsock.src_port", "vsock.dst_port",
        "vsock.virtio.len", "vsock.virtio.type", "vsock.payload", "frame.len", "frame.cap_len",
    ];

    /// <summary>Reads a pcap file with tshark; fails (never skips) when tshark is missing.</summary>
    public static async Task<List<string[]>> ReadAsync(string path, CancellationToken token)
    {
        string? tshark = new[] { "/usr/bin/tshark", "/usr/local/bin/tshark" }.FirstOrDefault(File.Exists);
        Assert.True(tshark is not null, "tshark is not installed: run scripts/install-test-deps.sh (Debian package tshark)");
        var start = new ProcessStartInfo(tshark!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in (string[])["-n", "-r", path, "-T", "fields", "-E", "separator=|"])
        {
            start.ArgumentList.Add(argument);
        }

        foreach (string field in Fields)
        {
            start.ArgumentList.Add("-e");
            start.ArgumentList.Add(field);
        }

        using Process process = Process.Start(start)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync(token);
        Task<string> error = process.StandardError.ReadToEndAsync(token);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"tshark exited {process.ExitCode}: {await error}");
        return [.. (await output).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => line.Split('|'))];
    }
}
