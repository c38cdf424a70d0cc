using Virtio.Vsock.Device.Siblings;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.Siblings;

/// <summary>Several simulated VMs sharing one CID map, disposed together.</summary>
internal sealed class SiblingHarness : IDisposable
{
    private readonly List<SiblingVm> _vms = [];

    public SiblingHarness(VsockCidMap? map = null)
    {
        Map = map ?? new VsockCidMap();
    }

    public VsockCidMap Map { get; }

    public SiblingVm Add(ulong cid, string[]? groups = null, VsockDeviceOptions? deviceOptions = null, GuestSimulatorOptions? guestOptions = null)
    {
        var vm = new SiblingVm(Map, cid, groups ?? [VsockCidMap.DefaultGroup], deviceOptions, guestOptions);
        _vms.Add(vm);
        return vm;
    }

    public void Dispose()
    {
        for (int i = _vms.Count - 1; i >= 0; i--)
        {
            _vms[i].Dispose();
        }
    }
}
