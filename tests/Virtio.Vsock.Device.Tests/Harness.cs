using Virtio.Vsock.Device;
using Virtio.Vsock.Device.Backends.InProcess;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests;

/// <summary>A device with the in-process backend, driven by the guest simulator.</summary>
internal sealed class Harness : IDisposable
{
    public Harness(VsockDeviceOptions? deviceOptions = null, GuestSimulatorOptions? guestOptions = null, int hostBufferSize = 128 * 1024)
    {
        DeviceOptions = deviceOptions ?? new VsockDeviceOptions();
        Backend = new InProcessBackend(hostBufferSize);
        (Guest, Device) = GuestSimulator.Create(DeviceOptions, Backend, guestOptions);
    }

    public VsockDeviceOptions DeviceOptions { get; }

    public InProcessBackend Backend { get; }

    public GuestSimulator Guest { get; }

    public VsockDevice Device { get; }

    public VsockMetrics Metrics => Device.Metrics;

    public static CancellationToken Timeout(int seconds = 20) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    /// <summary>Polls <paramref name="condition"/> until it holds; fails after a generous deadline (the test machine is loaded).</summary>
    public static async Task WaitUntil(Func<bool> condition, int milliseconds = 30_000, string? what = null)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(milliseconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Condition not met in {milliseconds} ms: {what}");
            }

            await Task.Delay(5); // a poll interval, bounded by the deadline above
        }
    }

    /// <summary>
    /// Waits until <paramref name="counter"/> stays unchanged for <paramref name="quietFor"/> (a device settling after
    /// set-up), failing after a generous deadline; returns the settled value.
    /// </summary>
    public static async Task<long> WaitQuiet(Func<long> counter, TimeSpan quietFor, string what, int deadlineMs = 30_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(deadlineMs);
        long value = counter();
        var quietSince = DateTime.UtcNow;
        while (DateTime.UtcNow - quietSince < quietFor)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{what} kept changing for {deadlineMs} ms (now {value}).");
            }

            await Task.Delay(10); // a poll interval, bounded by the deadline above
            long now = counter();
            if (now != value)
            {
                value = now;
                quietSince = DateTime.UtcNow;
            }
        }

        return value;
    }

    /// <summary>
    /// Asserts that <paramref name="counter"/> does not move from <paramref name="expected"/> during a measuring window
    /// (an absence over time, e.g. no wake-ups while idle: the verdict is the counter, never the wall time).
    /// </summary>
    public static Task AssertUnchangedFor(Func<long> counter, long expected, TimeSpan window, string what) =>
        AssertGrowsAtMost(counter, expected, 0, window, what);

    /// <summary>Asserts that <paramref name="counter"/> grows by at most <paramref name="maxGrowth"/> from <paramref name="baseline"/> during a measuring window.</summary>
    public static async Task AssertGrowsAtMost(Func<long> counter, long baseline, long maxGrowth, TimeSpan window, string what)
    {
        var windowDeadline = DateTime.UtcNow + window;
        while (true)
        {
            long now = counter();
            Assert.True(now - baseline <= maxGrowth, $"{what}: {baseline} -> {now} (at most +{maxGrowth} allowed) during a {window.TotalMilliseconds} ms window");
            if (DateTime.UtcNow >= windowDeadline)
            {
                return;
            }

            await Task.Delay(10); // a poll interval within the window, bounded by its deadline (windowDeadline)
        }
    }

    /// <summary>The payload bytes <see cref="RoundTripSentinel"/> adds to each of the device's TX and RX byte counters.</summary>
    public const int SentinelBytes = 1;

    /// <summary>
    /// A sentinel: a fresh connection on <paramref name="port"/> carries one byte guest to host and one back. When it
    /// returns, the device has processed every TX packet the guest queued before it and delivered RX after them.
    /// </summary>
    public async Task RoundTripSentinel(uint port, CancellationToken token)
    {
        using VsockListener listener = Backend.Listen(port);
        GuestSocket guest = await Guest.ConnectAsync(port, cancellationToken: token);
        VsockStream host = await listener.AcceptAsync(token);
        await guest.SendAsync(new byte[] { 0x5e }, token);
        Assert.Equal(new byte[] { 0x5e }, await Helpers.ReadExactly(host, 1, token));
        await host.WriteAsync(new byte[] { 0xe5 }, token);
        Assert.Equal(new byte[] { 0xe5 }, await Helpers.ReadExactly(guest, 1, token));
    }

    public void Dispose()
    {
        Device.Dispose();
        Guest.Dispose();
    }
}
