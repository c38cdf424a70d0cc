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

    public static async Task WaitUntil(Func<bool> condition, int milliseconds = 5000, string? what = null)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(milliseconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("Condition not met in time: " + what);
            }

            await Task.Delay(5);
        }
    }

    public void Dispose()
    {
        Device.Dispose();
        Guest.Dispose();
    }
}
