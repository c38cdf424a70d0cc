using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Virtio.Vsock.Device;
using VhostUserVsock.Hosting;

namespace VhostUserVsock.Control;

/// <summary>
/// The running VMs of a daemon, for the control socket: each VM's device and its packet capture. VMs add
/// themselves when they start and remove themselves when they stop. Owns the per-VM capture state; must never
/// keep a stopped VM's device.
/// </summary>
public sealed class VmRegistry
{
    private readonly ConcurrentDictionary<ulong, VmHandle> _vms = new();

    /// <summary>The running VMs, by guest CID.</summary>
    public IReadOnlyCollection<VmHandle> Vms => [.. _vms.Values.OrderBy(vm => vm.Device.GuestCid)];

    /// <summary>Finds a running VM.</summary>
    /// <param name="guestCid">Its guest CID.</param>
    /// <returns>The VM, or <see langword="null"/>.</returns>
    public VmHandle? Find(ulong guestCid) => _vms.TryGetValue(guestCid, out VmHandle? vm) ? vm : null;

    internal VmHandle Add(VsockDevice device, ILogger logger)
    {
        var handle = new VmHandle(device, logger);
        _vms[device.GuestCid] = handle;
        return handle;
    }

    internal void Remove(VmHandle handle)
    {
        _vms.TryRemove(new KeyValuePair<ulong, VmHandle>(handle.Device.GuestCid, handle));
        handle.StopCapture();
    }
}

/// <summary>One running VM as the control socket sees it: its device and its capture (at most one at a time).</summary>
public sealed class VmHandle
{
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private VmCapture? _capture;

    internal VmHandle(VsockDevice device, ILogger logger)
    {
        Device = device;
        _logger = logger;
    }

    /// <summary>The VM's device.</summary>
    public VsockDevice Device { get; }

    /// <summary>The file being captured to, or <see langword="null"/>.</summary>
    public string? CapturePath
    {
        get
        {
            lock (_gate)
            {
                return _capture?.Path;
            }
        }
    }

    /// <summary>Starts capturing to <paramref name="path"/>; refused while a capture runs.</summary>
    /// <param name="path">The pcap file (created or truncated, mode 0600).</param>
    /// <param name="snapLength">The most payload bytes kept per packet.</param>
    /// <returns>Why it was refused, or <see langword="null"/> when started.</returns>
    public string? StartCapture(string path, int snapLength)
    {
        lock (_gate)
        {
            if (_capture is not null)
            {
                return $"VM {Device.GuestCid} is already capturing to {_capture.Path}";
            }

            try
            {
                _capture = VmCapture.Start(path, snapLength, Device, _logger);
                return null;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
            {
                return $"cannot capture to {path}: {ex.Message}";
            }
        }
    }

    /// <summary>Stops the capture, if any.</summary>
    /// <returns>The packets written and dropped, or <see langword="null"/> when none ran.</returns>
    public (long Captured, long Dropped)? StopCapture()
    {
        VmCapture? capture;
        lock (_gate)
        {
            capture = _capture;
            _capture = null;
        }

        if (capture is null)
        {
            return null;
        }

        capture.Dispose();
        return (capture.Captured, capture.Dropped);
    }
}
