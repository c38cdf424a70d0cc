using System.Runtime.InteropServices;
using Vhost.User;
using Virtio.Memory;
using Virtio.Vsock.Device;

namespace VhostUserVsock.Hosting;

/// <summary>
/// Presents a <see cref="VsockDevice"/> to the vhost-user protocol layer: translates
/// <see cref="IVhostUserBackend"/> calls into device calls and the device's "notify queue N" into the
/// call eventfd the frontend gave for that queue.
/// </summary>
/// <remarks>
/// <para>QEMU's <c>vhost-user-vsock</c> device hands the backend queues 0 (RX) and 1 (TX) only; it keeps
/// the event queue itself, so <see cref="QueueCount"/> is 2.</para>
/// <para><b>Enable/disable.</b> The device processes a queue only while it is enabled: a queue the
/// frontend started but has not enabled is held back (its configuration kept), and disabling a running
/// queue stops it in the device, remembering where it stopped so that enabling it again resumes
/// there. This is the "started but disabled: no side effects" rule of the vhost-user specification.</para>
/// <para><b>Kicks.</b> The adapter takes every queue's kick eventfd (<see cref="TryTakeKick"/>) and hands it to the
/// device, whose loop waits on it in its own epoll: a kick never crosses a thread. The descriptor is dropped when
/// the frontend stops the ring (<see cref="StopQueue"/>, GET_VRING_BASE) or on reset.</para>
/// <para><b>Threading.</b> Control calls arrive on the connection's control thread; the device serializes everything
/// on its own loop, and this adapter's per-queue state is only touched by control calls.</para>
/// </remarks>
public sealed class VhostUserVsockBackend : IVhostUserBackend, IVsockDeviceNotifier
{
    private const int VhostQueues = 2;

    private readonly IVringNotifier?[] _calls = new IVringNotifier?[VhostQueues];
    private readonly VringConfig?[] _configs = new VringConfig?[VhostQueues];
    private readonly bool[] _running = new bool[VhostQueues];
    private readonly ushort _maxQueueSize;
    private VsockDevice? _device;

    /// <summary>Creates the adapter; <see cref="Attach"/> connects it to its device.</summary>
    /// <param name="maxQueueSize">The largest vring size accepted (a power of two, at most 32768).</param>
    public VhostUserVsockBackend(ushort maxQueueSize)
    {
        _maxQueueSize = maxQueueSize;
    }

    /// <inheritdoc/>
    public ulong Features => VsockDevice.OfferedFeatures;

    /// <inheritdoc/>
    public VhostUserProtocolFeatures ProtocolFeatures =>
        VhostUserProtocolFeatures.Mq | VhostUserProtocolFeatures.Config | VhostUserProtocolFeatures.ReplyAck
        | VhostUserProtocolFeatures.ConfigureMemSlots | VhostUserProtocolFeatures.ResetDevice;

    /// <inheritdoc/>
    public int QueueCount => VhostQueues;

    /// <inheritdoc/>
    public ushort MaxQueueSize => _maxQueueSize;

    private VsockDevice Device => _device ?? throw new InvalidOperationException("The backend is not attached to a device.");

    /// <summary>Connects the adapter to the device it presents (the device's notifier is this adapter).</summary>
    /// <param name="device">The device.</param>
    public void Attach(VsockDevice device) => _device = device;

    /// <inheritdoc/>
    public void SetFeatures(ulong acked) => Device.SetFeatures(acked);

    /// <inheritdoc/>
    public bool ReadConfig(uint offset, Span<byte> destination)
    {
        if ((ulong)offset + (ulong)destination.Length > VsockDevice.ConfigSize)
        {
            return false;
        }

        Device.ReadConfig(offset, destination);
        return true;
    }

    /// <inheritdoc/>
    public bool WriteConfig(uint offset, ReadOnlySpan<byte> source, bool migration) => false;

    /// <inheritdoc/>
    public void SetMemory(GuestMemory? memory)
    {
        if (memory is not null)
        {
            Device.SetMemory(memory);
        }
    }

    /// <inheritdoc/>
    public void StartQueue(int index, VringConfig config, IVringNotifier call)
    {
        _configs[index] = config;
        Volatile.Write(ref _calls[index], call);
        _running[index] = false;
    }

    /// <inheritdoc/>
    public ushort StopQueue(int index)
    {
        _device?.DetachKickEventFd(index);
        ushort next = _running[index] ? Device.StopQueue(index) : _configs[index]?.NextAvailableIndex ?? 0;
        _running[index] = false;
        _configs[index] = null;
        Volatile.Write(ref _calls[index], null);
        return next;
    }

    /// <inheritdoc/>
    public void SetQueueEnabled(int index, bool enabled)
    {
        if (_configs[index] is not VringConfig config || enabled == _running[index])
        {
            return;
        }

        if (enabled)
        {
            Device.StartQueue(index, new VsockQueueConfig(
                config.Size, config.DescriptorTable, config.AvailableRing, config.UsedRing, config.NextAvailableIndex));
            _running[index] = true;
        }
        else
        {
            ushort next = Device.StopQueue(index);
            _configs[index] = config with { NextAvailableIndex = next };
            _running[index] = false;
        }
    }

    /// <inheritdoc/>
    public void Kick(int index) => _device?.Kick(index);

    /// <inheritdoc/>
    public bool TryTakeKick(int index, SafeHandle kick)
    {
        Device.AttachKickEventFd(index, kick);
        return true;
    }

    /// <inheritdoc/>
    public void Reset()
    {
        Array.Clear(_calls);
        Array.Clear(_configs);
        Array.Clear(_running);
        _device?.Reset();
    }

    /// <inheritdoc/>
    void IVsockDeviceNotifier.NotifyQueue(int queueIndex)
    {
        if ((uint)queueIndex < VhostQueues)
        {
            Volatile.Read(ref _calls[queueIndex])?.Notify();
        }
    }
}
