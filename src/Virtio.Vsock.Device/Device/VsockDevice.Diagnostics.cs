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
        int rxAvailable = RxBuffersAvailable();
        var connections = new List<VsockConnectionInfo>(_muxer.ConnectionCount);
        _muxer.Describe(connections, rxAvailable == 0);
        return new VsockDeviceSnapshot
        {
            GuestCid = GuestCid,
            Connections = connections,
            SiblingConnections = _relay?.FlowCount ?? 0,
            RxBuffersAvailable = rxAvailable,
            TxChainsWaiting = ChainsWaiting(VsockQueueIndex.Tx),
            Queues = [DescribeQueue(VsockQueueIndex.Rx, "rx"), DescribeQueue(VsockQueueIndex.Tx, "tx"), DescribeQueue(VsockQueueIndex.Event, "event")],
        };
    }

    /// <summary>Queue <paramref name="q"/>'s indices as the device and the driver see them. Guest values are only shown,
    /// never used: a hostile driver gets a wrong number, nothing else.</summary>
    private VsockQueueInfo DescribeQueue(int q, string name)
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
            Name = name,
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

    private int RxBuffersAvailable() => ChainsWaiting(VsockQueueIndex.Rx) + (_rxHeld ? 1 : 0);

    /// <summary>Chains of queue <paramref name="q"/> the driver made available and the device has not popped.</summary>
    private int ChainsWaiting(int q)
    {
        GuestMemory? memory = _memory;
        if (memory is null || !_running[q] || _broken[q])
        {
            return 0;
        }

        VirtQueue queue = _queues[q];
        if (queue.ReadAvailIndex(memory, out ushort availIndex) != QueueError.None)
        {
            return 0;
        }

        return (ushort)(availIndex - queue.NextAvail);
    }
}
