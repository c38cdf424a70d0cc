using Virtio.Vsock.Device.Backends.InProcess;
using Virtio.Vsock.Device.Siblings;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.Siblings;

/// <summary>One simulated VM in a CID map: a device with the in-process backend and a guest simulator that can be restarted.</summary>
internal sealed class SiblingVm : IDisposable
{
    private readonly SwitchableNotifier _notifier = new();
    private readonly GuestSimulatorOptions? _guestOptions;
    private bool _disposed;
    private bool _guestRunning;

    public SiblingVm(VsockCidMap map, ulong cid, string[] groups, VsockDeviceOptions? deviceOptions = null, GuestSimulatorOptions? guestOptions = null)
    {
        Cid = cid;
        _guestOptions = guestOptions;
        DeviceOptions = deviceOptions ?? new VsockDeviceOptions();
        DeviceOptions.GuestCid = cid;
        DeviceOptions.Siblings = map;
        DeviceOptions.SiblingGroups = groups;
        Backend = new InProcessBackend();
        Device = new VsockDevice(DeviceOptions, Backend, _notifier);
        Guest = StartGuest();
    }

    public ulong Cid { get; }

    public VsockDeviceOptions DeviceOptions { get; }

    public InProcessBackend Backend { get; }

    public VsockDevice Device { get; }

    public GuestSimulator Guest { get; private set; }

    public SiblingMetrics Siblings => Device.SiblingMetrics!;

    /// <summary>The VMM went away (QEMU killed): the device resets and the guest is gone.</summary>
    public void Kill()
    {
        Device.Reset();
        _notifier.Target = null;
        Guest.Dispose();
        _guestRunning = false;
    }

    /// <summary>A new guest boots on the same device (QEMU restarted against the running daemon).</summary>
    public void Boot() => Guest = StartGuest();

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Device.Dispose();
        if (_guestRunning)
        {
            Guest.Dispose();
        }
    }

    private GuestSimulator StartGuest()
    {
        var guest = new GuestSimulator(_guestOptions, Cid);
        _notifier.Target = guest;
        guest.Attach(Device);
        _guestRunning = true;
        return guest;
    }
}
