using System.Diagnostics;

namespace Virtio.Vsock.Device;

/// <summary>
/// One device registered with <see cref="VsockMeter"/>: its counters, its backend's counters, and a short-lived
/// cache of its <see cref="VsockDeviceSnapshot"/> so one collection pass asks the device loop once. Must never
/// wait for the device loop longer than <see cref="SnapshotWait"/>.
/// </summary>
internal sealed class VsockMeterSource
{
    /// <summary>The longest a collection waits for the device loop.</summary>
    public static readonly TimeSpan SnapshotWait = TimeSpan.FromSeconds(1);

    private static readonly long CacheTicks = Stopwatch.Frequency / 4;
    private readonly Func<HostBackendCounters>? _hostCounters;
    private readonly Lock _gate = new();
    private VsockDeviceSnapshot? _snapshot;
    private long _snapshotAt;

    public VsockMeterSource(VsockDevice device, Func<HostBackendCounters>? hostCounters)
    {
        Device = device;
        _hostCounters = hostCounters;
        Tag = new KeyValuePair<string, object?>(VsockMeter.GuestCidTag, (long)device.GuestCid);
    }

    public VsockDevice Device { get; }

    /// <summary>The guest CID tag.</summary>
    public KeyValuePair<string, object?> Tag { get; }

    /// <summary>Whether the device has a Unix backend whose counters are published.</summary>
    public bool HasHost => _hostCounters is not null;

    public HostBackendCounters Host => _hostCounters?.Invoke() ?? default;

    /// <summary>A snapshot at most a quarter second old, or <see langword="null"/> when the loop did not answer in time.</summary>
    public VsockDeviceSnapshot? CurrentSnapshot()
    {
        lock (_gate)
        {
            long now = Stopwatch.GetTimestamp();
            if (_snapshot is not null && now - _snapshotAt < CacheTicks)
            {
                return _snapshot;
            }

            Task<VsockDeviceSnapshot> task = Device.SnapshotAsync();
            try
            {
                if (!task.Wait(SnapshotWait))
                {
                    return null;
                }
            }
            catch (AggregateException)
            {
                return null;
            }

            _snapshot = task.Result;
            _snapshotAt = Stopwatch.GetTimestamp();
            return _snapshot;
        }
    }
}
