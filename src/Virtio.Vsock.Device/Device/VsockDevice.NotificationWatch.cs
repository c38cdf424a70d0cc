using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Virtio.Memory;
using Virtio.Queue;

namespace Virtio.Vsock.Device;

/// <summary>
/// The used-buffer notification watch: a driver that stopped moving after the device returned buffers is notified
/// again, a few times.
/// </summary>
/// <remarks>
/// <para>With EVENT_IDX the driver's <c>used_event</c> says where it is: after handling an interrupt it takes the used
/// buffers and moves <c>used_event</c> to the next one it has not seen, so a driver that has caught up has
/// <c>used_event</c> equal to the device's published <c>used.idx</c>. When it is not equal and neither it nor the
/// driver's <c>avail.idx</c> has moved for a whole period, the driver is waiting and not working: most likely for a
/// notification that was lost between the device and it (a call descriptor swapped while the notification was in
/// flight, an interrupt masked and unmasked around it), or it left its callbacks disabled (Linux parks
/// <c>used_event</c> far away to do that) and expects to be woken some other way. A driver waiting for TX buffers or
/// RX packets would wait for ever: the device sends the notification again, once per period, at most
/// <see cref="MaxRepeatsPerStall"/> times until the driver moves again. A spurious used-buffer notification is
/// harmless by the spec's rules, so the watch costs a stuck or hostile driver a few wake-ups and a healthy one
/// nothing.</para>
/// <para>The watch runs on the loop, armed by a publish and disarmed once no queue is owed anything (or its repeats
/// are spent): an idle device has no timer. Without EVENT_IDX the ring shows nothing of the driver's progress and
/// nothing is watched.</para>
/// <para><b>Owns:</b> the watch deadline and, per queue, the driver's indices seen at the last check and the repeats
/// of the current stall. <b>Must never:</b> notify more than once per period per queue, more than
/// <see cref="MaxRepeatsPerStall"/> times per stall, or use the guest's indices for anything but that choice.</para>
/// </remarks>
public sealed partial class VsockDevice
{
    /// <summary>How long a driver may stay without moving before its notification is sent again.</summary>
    internal static readonly TimeSpan NotificationWatchPeriod = TimeSpan.FromSeconds(1);

    /// <summary>The repeats one stall gets: a driver still not moving after them is not waiting for a notification.</summary>
    internal const int MaxRepeatsPerStall = 5;

    private static readonly long WatchPeriodTicks = (long)(NotificationWatchPeriod.TotalSeconds * Stopwatch.Frequency);

    // Per queue: the driver's used_event and avail.idx at the last check (-1: not seen), and this stall's repeats.
    private readonly int[] _watchedUsedEvent = [-1, -1, -1];
    private readonly int[] _watchedAvail = [-1, -1, -1];
    private readonly int[] _stallRepeats = new int[VsockQueueIndex.Count];
    private readonly long[] _queueRepeated = new long[VsockQueueIndex.Count];
    private long _watchDeadline = long.MaxValue;
    private bool _publishedSinceWatch;

    /// <summary>Runs the watch when due and arms it after a publish (loop thread, once per turn).</summary>
    private void WatchNotifications(GuestMemory memory, long now)
    {
        if (now >= _watchDeadline)
        {
            bool watching = false;
            for (int q = 0; q < VsockQueueIndex.Count; q++)
            {
                watching |= CheckDriverMoving(q, memory);
            }

            _watchDeadline = watching || _publishedSinceWatch ? now + WatchPeriodTicks : long.MaxValue;
            _publishedSinceWatch = false;
        }
        else if (_publishedSinceWatch && _watchDeadline == long.MaxValue)
        {
            _watchDeadline = now + WatchPeriodTicks;
            _publishedSinceWatch = false;
        }
    }

    /// <returns>Whether queue <paramref name="q"/> stays watched: its driver has not caught up and repeats are left.</returns>
    private bool CheckDriverMoving(int q, GuestMemory memory)
    {
        VirtQueue queue = _queues[q];
        if (!_running[q] || _broken[q] || !queue.TryReadUsedEvent(memory, out ushort usedEvent)
            || queue.ReadAvailIndex(memory, out ushort availIndex) != QueueError.None || usedEvent == queue.PublishedUsed)
        {
            ForgetWatchedQueue(q);
            return false;
        }

        if (_watchedUsedEvent[q] != usedEvent || _watchedAvail[q] != availIndex)
        {
            // First sight, or the driver moved since the last check: a new stall starts only if it stops again.
            _watchedUsedEvent[q] = usedEvent;
            _watchedAvail[q] = availIndex;
            _stallRepeats[q] = 0;
            return true;
        }

        if (_stallRepeats[q] == MaxRepeatsPerStall)
        {
            return false;
        }

        _stallRepeats[q]++;
        Interlocked.Increment(ref Metrics.RepeatedNotificationsField);
        _queueRepeated[q]++;
        if (_logger is not null)
        {
            LogNotificationRepeated(_logger, q, usedEvent, queue.PublishedUsed, availIndex);
        }

        _notifier.NotifyQueue(q);
        return _stallRepeats[q] < MaxRepeatsPerStall;
    }

    /// <summary>Forgets what the watch saw on queue <paramref name="q"/> (caught up, or the queue was started or reset).</summary>
    private void ForgetWatchedQueue(int q)
    {
        _watchedUsedEvent[q] = -1;
        _watchedAvail[q] = -1;
        _stallRepeats[q] = 0;
    }

    [LoggerMessage(EventId = 203, Level = LogLevel.Debug, Message = "vsock: queue {Queue}: the driver has not moved for a watch period (used_event {UsedEvent}, published used {Used}, avail {Avail}); notifying again")]
    private static partial void LogNotificationRepeated(ILogger logger, int queue, ushort usedEvent, ushort used, ushort avail);
}
