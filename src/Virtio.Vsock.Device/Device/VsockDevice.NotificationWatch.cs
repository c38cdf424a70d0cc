using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Virtio.Memory;
using Virtio.Queue;

namespace Virtio.Vsock.Device;

/// <summary>
/// The used-buffer notification watch: a notification the driver never acted on is sent again.
/// </summary>
/// <remarks>
/// <para>With EVENT_IDX the driver's <c>used_event</c> says where it is: after handling an interrupt it takes the used
/// buffers and moves <c>used_event</c> to the next one it has not seen. A <c>used_event</c> the device's published
/// <c>used.idx</c> has passed (by at most the ring size) is a notification the device owed; if it has not moved a whole
/// period later, the driver has not handled that notification. Something between the device and the driver lost it
/// (a call descriptor swapped while the notification was in flight, an interrupt masked and unmasked around it), and a
/// driver waiting for TX buffers or RX packets would wait for ever: the device sends it again, once per period, for as
/// long as the driver stays there. A spurious used-buffer notification is harmless by the spec's rules, so the watch
/// can only cost a wake-up per period.</para>
/// <para>The watch runs on the loop, armed by a publish and disarmed once every queue's driver has caught up: an idle
/// device has no timer. Without EVENT_IDX the ring shows nothing of the driver's progress and nothing is watched.</para>
/// <para><b>Owns:</b> the watch deadline and, per queue, the <c>used_event</c> seen at the last check. <b>Must never:</b>
/// notify more than once per period per queue, or trust <c>used_event</c> beyond choosing whether to notify.</para>
/// </remarks>
public sealed partial class VsockDevice
{
    /// <summary>How long a passed <c>used_event</c> may stay unmoved before the notification is sent again.</summary>
    internal static readonly TimeSpan NotificationWatchPeriod = TimeSpan.FromSeconds(1);

    private static readonly long WatchPeriodTicks = (long)(NotificationWatchPeriod.TotalSeconds * Stopwatch.Frequency);

    private readonly int[] _watchedUsedEvent = [-1, -1, -1];
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
                watching |= CheckNotificationAnswered(q, memory);
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

    /// <returns>Whether queue <paramref name="q"/>'s driver is behind a notification (the watch goes on).</returns>
    private bool CheckNotificationAnswered(int q, GuestMemory memory)
    {
        VirtQueue queue = _queues[q];
        if (!_running[q] || _broken[q] || !queue.TryReadUsedEvent(memory, out ushort usedEvent))
        {
            _watchedUsedEvent[q] = -1;
            return false;
        }

        // How far the published used.idx is past the index the driver asked to be told about: 0 when it has caught
        // up; more than the ring size when used_event lies ahead (it wants a later notification, or parked it).
        int passedBy = (ushort)(queue.PublishedUsed - usedEvent);
        if (passedBy == 0 || passedBy > queue.Size)
        {
            _watchedUsedEvent[q] = -1;
            return false;
        }

        if (_watchedUsedEvent[q] == usedEvent)
        {
            Interlocked.Increment(ref Metrics.RepeatedNotificationsField);
            _queueRepeated[q]++;
            if (_logger is not null)
            {
                LogNotificationRepeated(_logger, q, usedEvent, queue.PublishedUsed);
            }

            _notifier.NotifyQueue(q);
        }

        _watchedUsedEvent[q] = usedEvent;
        return true;
    }

    /// <summary>Forgets what the watch saw on queue <paramref name="q"/> (the queue was started, stopped or reset).</summary>
    private void ForgetWatchedQueue(int q) => _watchedUsedEvent[q] = -1;

    [LoggerMessage(EventId = 203, Level = LogLevel.Debug, Message = "vsock: queue {Queue}: the driver still waits at used index {UsedEvent} (published {Used}) a period after its notification; notifying again")]
    private static partial void LogNotificationRepeated(ILogger logger, int queue, ushort usedEvent, ushort used);
}
