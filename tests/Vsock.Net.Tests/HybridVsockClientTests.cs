using System.Net.Sockets;
using System.Text;

namespace Vsock.Net.Tests;

/// <summary>The CONNECT/OK handshake against scripted devices on real Unix sockets.</summary>
public sealed class HybridVsockClientTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact(Timeout = 20_000)]
    public async Task Ok_reply_gives_the_socket_and_bytes_after_the_line_are_not_consumed()
    {
        string? command = null;
        await using var device = new ScriptedDevice(async (line, s) =>
        {
            command = line;
            await s.SendAsync("OK 1073741824\nfirst bytes from the guest"u8.ToArray(), SocketFlags.None);
            byte[] buffer = new byte[4];
            int n = await s.ReceiveAsync(buffer, SocketFlags.None);
            await s.SendAsync(buffer.AsMemory(0, n), SocketFlags.None);
        });

        HybridVsockConnection connection = await HybridVsockClient.ConnectWithPortAsync(device.UdsPath, 5000, cancellationToken: Token);
        using Socket socket = connection.Socket;
        Assert.Equal("CONNECT 5000", command);
        Assert.Equal(1073741824u, connection.HostPort);
        using var stream = new NetworkStream(socket);
        byte[] first = new byte["first bytes from the guest".Length];
        await stream.ReadExactlyAsync(first, Token);
        Assert.Equal("first bytes from the guest", Encoding.ASCII.GetString(first));
        await stream.WriteAsync("ping"u8.ToArray(), Token);
        byte[] echo = new byte[4];
        await stream.ReadExactlyAsync(echo, Token);
        Assert.Equal("ping", Encoding.ASCII.GetString(echo));
        await device.Completion;
    }

    [Fact(Timeout = 20_000)]
    public async Task Device_closing_without_OK_is_a_refusal()
    {
        await using var device = new ScriptedDevice((_, s) =>
        {
            s.Shutdown(SocketShutdown.Both);
            return Task.CompletedTask;
        });
        var e = await Assert.ThrowsAsync<HybridVsockConnectException>(() => HybridVsockClient.ConnectAsync(device.UdsPath, 5001, cancellationToken: Token));
        Assert.Equal(HybridVsockConnectError.Refused, e.Error);
        Assert.Contains("5001", e.Message, StringComparison.Ordinal);
    }

    [Theory(Timeout = 20_000)]
    [InlineData("ERROR no such port\n")]
    [InlineData("OK\n")]
    [InlineData("OK 12x\n")]
    public async Task A_reply_that_is_not_OK_port_is_unexpected(string reply)
    {
        await using var device = new ScriptedDevice(async (_, s) => await s.SendAsync(Encoding.ASCII.GetBytes(reply), SocketFlags.None));
        var e = await Assert.ThrowsAsync<HybridVsockConnectException>(() => HybridVsockClient.ConnectAsync(device.UdsPath, 5002, cancellationToken: Token));
        Assert.Equal(HybridVsockConnectError.UnexpectedReply, e.Error);
    }

    [Fact(Timeout = 20_000)]
    public async Task A_reply_line_without_end_is_cut_at_64_bytes_and_unexpected()
    {
        await using var device = new ScriptedDevice(async (_, s) =>
        {
            await s.SendAsync(new byte[4096], SocketFlags.None);
            await Task.Delay(Timeout.Infinite, TestContext.Current.CancellationToken).ContinueWith(_ => { }, TaskScheduler.Default); // holds the connection open until the test ends (its timeout or end cancels it): not a wait for anything
        });
        var e = await Assert.ThrowsAsync<HybridVsockConnectException>(() => HybridVsockClient.ConnectAsync(device.UdsPath, 5003, TimeSpan.FromSeconds(5), Token));
        Assert.Equal(HybridVsockConnectError.UnexpectedReply, e.Error);
    }

    [Fact(Timeout = 20_000)]
    public async Task A_silent_device_times_out()
    {
        var release = new TaskCompletionSource();
        await using var device = new ScriptedDevice(async (_, _) => await release.Task);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<HybridVsockConnectException>(() => HybridVsockClient.ConnectAsync(device.UdsPath, 5004, TimeSpan.FromMilliseconds(300), Token));
        Assert.Equal(HybridVsockConnectError.TimedOut, e.Error);
        // The error says the timeout ended it (the test's own 20 s limit bounds it from above); a loaded machine may
        // stretch it, but it cannot come before the 300 ms (250: timer granularity).
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(250), $"timed out after only {clock.Elapsed}");
        release.SetResult();
    }

    [Fact(Timeout = 20_000)]
    public async Task Caller_cancellation_is_an_OperationCanceledException_not_a_timeout()
    {
        var release = new TaskCompletionSource();
        await using var device = new ScriptedDevice(async (_, _) => await release.Task);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => HybridVsockClient.ConnectAsync(device.UdsPath, 5005, TimeSpan.FromSeconds(30), cts.Token));
        release.SetResult();
    }

    [Fact(Timeout = 20_000)]
    public async Task No_device_at_the_path_is_unreachable()
    {
        string dir = Directory.CreateTempSubdirectory("vnt").FullName;
        try
        {
            var e = await Assert.ThrowsAsync<HybridVsockConnectException>(() => HybridVsockClient.ConnectAsync(Path.Combine(dir, "none.sock"), 5006, cancellationToken: Token));
            Assert.Equal(HybridVsockConnectError.DeviceUnreachable, e.Error);
            Assert.IsAssignableFrom<SocketException>(e.InnerException);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
