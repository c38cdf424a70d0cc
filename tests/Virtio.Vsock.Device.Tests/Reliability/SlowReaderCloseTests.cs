using Virtio.Vsock.Device.Backends.InProcess;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.Reliability;

/// <summary>
/// A guest that sends and closes at once, to a host that reads slowly: the shutdown timeout counts from the host's last
/// progress, so every byte arrives however long the whole drain takes (found by the soak run: a 2 s timeout counted
/// from the guest's close cut an orderly connection short on a starved machine).
/// </summary>
public sealed class SlowReaderCloseTests
{
    private const uint Port = 5500;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task EveryByteReachesAHostThatDrainsSlowerThanTheShutdownTimeout()
    {
        var shutdownTimeout = TimeSpan.FromSeconds(1);
        // The guest waits for the close as long as it takes (Linux waits 8 s before it resets by itself).
        using var harness = new Harness(
            new VsockDeviceOptions { ShutdownTimeout = shutdownTimeout, BufferSize = 256 * 1024 },
            new GuestSimulatorOptions { CloseTimeout = TimeSpan.FromSeconds(60) },
            hostBufferSize: 4096);
        using VsockListener listener = harness.Backend.Listen(Port);
        GuestSocket guest = await harness.Guest.ConnectAsync(Port, cancellationToken: Token);
        await using VsockStream host = await listener.AcceptAsync(Token);
        byte[] payload = Helpers.Pattern(200 * 1024, 21);
        await guest.SendAsync(payload, Token);
        Task closed = guest.CloseAsync();

        // Read at most 8 KiB per step (the host buffer holds 4 KiB, so reads bring 4 KiB), each step 100 ms apart: the
        // drain takes about 5 s, five times the shutdown timeout, while a gap between two reads stays ten times below
        // it even when a loaded machine stretches the 100 ms.
        var received = new MemoryStream();
        var buffer = new byte[8 * 1024];
        var started = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            int n = await host.ReadAsync(buffer, Token).AsTask().WaitAsync(TimeSpan.FromSeconds(20), Token);
            if (n == 0)
            {
                break;
            }

            received.Write(buffer, 0, n);
            await Task.Delay(100, Token); // the slow reader under test; total drain time far beyond the shutdown timeout
        }

        Assert.Equal(payload, received.ToArray());
        await closed.WaitAsync(TimeSpan.FromSeconds(20), Token);
        Assert.False(guest.WasReset, "the guest's close ended with the device's RST answering its SHUTDOWN, not a reset");
        Assert.True(started.Elapsed > shutdownTimeout * 3, $"the drain took {started.Elapsed}: too fast to test the timeout");
        Assert.Equal(0, harness.Metrics.ShutdownTimeouts);
        await Harness.WaitUntil(() => harness.Device.ConnectionCount == 0, 20_000, "the connection closes once drained");
    }
}
