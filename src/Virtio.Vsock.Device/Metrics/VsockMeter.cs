using System.Diagnostics.Metrics;

namespace Virtio.Vsock.Device;

/// <summary>
/// Publishes the counters of registered devices (<see cref="VsockMetrics"/>, <see cref="Siblings.SiblingMetrics"/>
/// and the Unix backend's) as instruments of the <see cref="System.Diagnostics.Metrics.Meter"/> named
/// <see cref="MeterName"/>, tagged with the VM's guest CID (<c>vsock.guest_cid</c>) and, where a counter has two
/// sides, its direction; plus gauges from <see cref="VsockDevice.SnapshotAsync"/> (live connections, bytes
/// buffered, connections stalled on credit, RX buffers available).
/// </summary>
/// <remarks>
/// Every instrument is observable: nothing runs on the device's hot path, values are read when a listener
/// (<c>dotnet-counters</c>, OpenTelemetry, a <see cref="MeterListener"/>) collects. Owns the process-wide meter
/// and the list of registered devices; must never keep a device alive after its registration is disposed.
/// </remarks>
public static class VsockMeter
{
    /// <summary>The meter's name, for <c>dotnet-counters monitor --counters VirtioVsock</c>.</summary>
    public const string MeterName = "VirtioVsock";

    /// <summary>The tag carrying the VM's guest CID.</summary>
    public const string GuestCidTag = "vsock.guest_cid";

    /// <summary>The tag carrying the direction (<see cref="GuestToHost"/> or <see cref="HostToGuest"/>).</summary>
    public const string DirectionTag = "direction";

    /// <summary>Direction tag value: from the guest to the host side.</summary>
    public const string GuestToHost = "guest_to_host";

    /// <summary>Direction tag value: from the host side to the guest.</summary>
    public const string HostToGuest = "host_to_guest";

    private static readonly Lock Gate = new();
    private static readonly List<VsockMeterSource> Sources = [];

    /// <summary>The meter (created once per process).</summary>
    public static Meter Meter { get; } = CreateMeter();

    /// <summary>Publishes a device's counters until the returned registration is disposed.</summary>
    /// <param name="device">The device.</param>
    /// <param name="hostCounters">Reads the host backend's counters (the Unix backend's <c>Counters.ForMeter()</c>), when the device has one.</param>
    /// <returns>Disposing it stops publishing the device.</returns>
    public static IDisposable Register(VsockDevice device, Func<HostBackendCounters>? hostCounters = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        var source = new VsockMeterSource(device, hostCounters);
        lock (Gate)
        {
            Sources.Add(source);
        }

        return new Registration(source);
    }

    private static VsockMeterSource[] Snapshot()
    {
        lock (Gate)
        {
            return [.. Sources];
        }
    }

    private static Meter CreateMeter()
    {
        var meter = new Meter(MeterName, typeof(VsockMeter).Assembly.GetName().Version?.ToString());
        VsockMeterInstruments.Create(meter, Snapshot);
        return meter;
    }

    private sealed class Registration(VsockMeterSource source) : IDisposable
    {
        public void Dispose()
        {
            lock (Gate)
            {
                Sources.Remove(source);
            }
        }
    }
}
