namespace Virtio.Vsock.Device.Tests.Siblings;

/// <summary>A device notifier that can be pointed at a new guest simulator when the "VM" restarts.</summary>
internal sealed class SwitchableNotifier : IVsockDeviceNotifier
{
    private volatile IVsockDeviceNotifier? _target;

    public IVsockDeviceNotifier? Target
    {
        get => _target;
        set => _target = value;
    }

    public void NotifyQueue(int queueIndex) => _target?.NotifyQueue(queueIndex);
}
