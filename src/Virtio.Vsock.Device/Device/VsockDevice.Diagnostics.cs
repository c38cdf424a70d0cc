using Virtio.Memory;
using Virtio.Queue;

namespace Virtio.Vsock.Device;

/// <summary>
/// The device's diagnostic surface: connection snapshots taken on the loop, and the packet tap. Reads
/// device state only on the loop thread; must never change connection or queue state.
/// </summary>
public sealed partial class VsockDevice
{
    private volatile IVsockPacketTap? _tap;

    /// <summary>Sees every packet crossing the device (packet capture), or <see langword="null"/> (default).
    /// May be set or cleared at any time from any thread; see <see cref="IVsockPacketTap"/> for its rules.</summary>
    public IVsockPacketTap? PacketTap
    {
        get => _tap;
        set => _tap = value;
    }

    /// <summary>
    /// Copies the device's connections and queue state on its loop. The task completes after the loop's current
    /// turn; a caller that cannot wait long (metrics collection) should bound the wait, since a disposed device
    /// never completes it.
    /// </summary>
    /// <returns>The snapshot.</returns>
    public Task<VsockDeviceSnapshot> SnapshotAsync()
    {
        var completion = new TaskCompletionSource<VsockDeviceSnapshot>(TaskCreationOptions.RunContinuationsAsynchronously);
        _loop.Post(() =>
        {
            try
            {
                completion.TrySetResult(SnapshotOnLoop());
            }
            catch (Exception exception)
            {
                completion.TrySetException(exception);
            }
        });
        return completion.Task;
    }

    private VsockDeviceSnapshot SnapshotOnLoop()
    {
        // Each ring's indices are read once; the RX and TX counts are derived from them.
        var queues = new VsockQueueInfo[VsockQueueIndex.Count];
        for (int q = 0; q < queues.Length; q++)
        {
            queues[q] = DescribeQueue(q);
        }

        int rxAvailable = ChainsWaiting(queues[VsockQueueIndex.Rx]) + (_rxHeld ? 1 : 0);
        var connections = new List<VsockConnectionInfo>(_muxer.ConnectionCount);
        _muxer.Describe(connections, rxAvailable == 0);
        return new VsockDeviceSnapshot
        {
            GuestCid = GuestCid,
            Connections = connections,
            SiblingConnections = _relay?.FlowCount ?? 0,
            RxBuffersAvailable = rxAvailable,
            TxChainsWaiting = ChainsWaiting(queues[VsockQueueIndex.Tx]),
            Queues = queues,
        };
    }

    /// <summary>Queue <paramref name="q"/>'s indices as the device and the driver see them. Guest values are only shown,
    /// never used: a hostile driver gets a wrong number, nothing else.</summary>
    private VsockQueueInfo DescribeQueue(int q)
    {
        VirtQueue queue = _queues[q];
        GuestMemory? memory = _memory;
        ushort availIndex = 0;
        ushort usedEvent = 0;
        bool readable = memory is not null && _running[q] && queue.ReadAvailIndex(memory, out availIndex) == QueueError.None;
        bool hasUsedEvent = readable && queue.TryReadUsedEvent(memory!, out usedEvent);
        return new VsockQueueInfo
        {
            Index = q,
            Name = VsockQueueIndex.Name(q),
            Running = _running[q],
            Broken = _broken[q],
            AvailIndex = readable ? availIndex : null,
            NextAvail = queue.NextAvail,
            UsedIndex = queue.PublishedUsed,
            UsedEvent = hasUsedEvent ? usedEvent : null,
            Notifications = _queueNotifications[q],
            Suppressed = _queueSuppressed[q],
            Repeated = _queueRepeated[q],
        };
    }

    /// <summary>Chains the driver made available and the device has not popped (0 while the queue does not run).</summary>
    private static int ChainsWaiting(VsockQueueInfo queue) =>
        queue.Running && !queue.Broken && queue.AvailIndex is ushort availIndex ? (ushort)(availIndex - queue.NextAvail) : 0;
}
