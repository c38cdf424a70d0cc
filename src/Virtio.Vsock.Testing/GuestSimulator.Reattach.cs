using Virtio.Queue.Testing;
using Virtio.Vsock.Device;

namespace Virtio.Vsock.Testing;

/// <summary>
/// The simulator's side of a frontend reconnect: the device is reset and set up again on the same guest
/// memory and rings, as QEMU does when its vhost-user backend comes back. Owns nothing new; it must never
/// touch the guest's sockets (the guest kernel is not told that its device's backend went away).
/// </summary>
public sealed partial class GuestSimulator
{
    private ulong DriverFeatures =>
        VsockFeatures.Version1 | VsockFeatures.Stream | VsockFeatures.IndirectDescriptors
        | (Options.EventIdx ? VsockFeatures.EventIndex : 0) | (Options.SeqPacket ? VsockFeatures.SeqPacket : 0);

    /// <summary>
    /// Simulates a frontend disconnect and reconnect (QEMU losing its vhost-user backend and connecting
    /// again): resets the device, then negotiates the same features, hands it the same memory and restarts
    /// each queue where QEMU would, at the ring's current <c>used.idx</c> (QEMU cannot ask a dead backend for
    /// its vring base, so it resumes at the used index). Buffers the driver posted and the device had not
    /// used are read again; the guest's sockets are left as they are, as the guest kernel sees nothing.
    /// </summary>
    /// <exception cref="InvalidOperationException">The simulator was never attached.</exception>
    public void Reattach()
    {
        VsockDevice device = _device ?? throw new InvalidOperationException("Attach the simulator before re-attaching it.");
        lock (Sync)
        {
            device.Reset();
            device.SetFeatures(DriverFeatures);
            device.SetMemory(_memory);
            TestDriver[] drivers = [_rxDriver, _txDriver, _eventDriver];
            for (int q = 0; q < 3; q++)
            {
                QueueLayout layout = _layouts[q];
                ushort resumeAt = drivers[q].UsedIndex;
                device.StartQueue(q, new VsockQueueConfig(layout.Size, layout.DescriptorTable, layout.AvailRing, layout.UsedRing, resumeAt));
            }

            Interlocked.Increment(ref _reattachments);
        }

        _wake.Set();
    }

    /// <summary>How many times <see cref="Reattach"/> ran.</summary>
    public int Reattachments => Volatile.Read(ref _reattachments);
}
