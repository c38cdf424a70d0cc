using System.Diagnostics;

namespace Virtio.Vsock.Device;

/// <summary>
/// The loop's wait for events: at once when work is pending; else it polls while the <see cref="AdaptivePolling"/>
/// window is open, then sleeps in <c>epoll_wait</c> until an event or the nearest timer.
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> nothing of its own (the policy object holds the window and the counters). <b>Must never:</b>
/// poll past the window, poll after a turn that paused polling, keep polling once a yield gave the CPU away, or let
/// polling delay a timer (the sleep's timeout is taken again after polling).</para>
/// </remarks>
internal sealed unsafe partial class DeviceEventLoop
{
    /// <summary>The loop's polling policy and its counters.</summary>
    public AdaptivePolling Polling => _polling;

    /// <summary>Set by every turn (on the loop): while it is set, waits sleep at once whatever the polling window (the
    /// last turn was part of a bulk transfer, see <see cref="AdaptivePolling.BulkTurnBytes"/>); the next turn sets it
    /// again.</summary>
    public bool PollingPaused { get; set; }

    /// <summary>
    /// One wait for events: none when work is pending (<paramref name="timeout"/> 0); else polls while the adaptive
    /// window is open, then sleeps up to <paramref name="timeout"/> ms (-1: until an event).
    /// </summary>
    private int Wait(byte* events, int timeout)
    {
        if (timeout == 0)
        {
            return Interop.Sys.EpollWait(_epoll.Fd, events, MaxEvents, 0);
        }

        if (!_polling.Enabled)
        {
            _polling.NoteSlept();
            return Interop.Sys.EpollWait(_epoll.Fd, events, MaxEvents, timeout);
        }

        long start = Stopwatch.GetTimestamp();
        int count = 0;
        long window = _polling.WindowTicks;
        if (PollingPaused)
        {
            _polling.NoteBulkSleep();
            window = 0;
        }

        if (window > 0)
        {
            // Each empty poll yields the CPU to any thread waiting for it: the one that will send the next event may
            // be that one. A yield that took long gave the CPU away: another thread needs this CPU, and polling would
            // compete with it (and with the sender of the next event, when that is the one), so after one more poll
            // the loop sleeps.
            long until = start + window;
            while ((count = Interop.Sys.EpollWait(_epoll.Fd, events, MaxEvents, 0)) == 0 && !_stopping)
            {
                long now = Stopwatch.GetTimestamp();
                if (now >= until)
                {
                    break;
                }

                Thread.Yield();
                if (Stopwatch.GetTimestamp() - now > _polling.YieldGaveAwayTicks)
                {
                    until = 0;
                }
            }

            if (count > 0)
            {
                _polling.NoteCaught();
            }
            else if (count == 0)
            {
                // The timeout counts from now: the time spent polling is taken off the nearest timer's.
                timeout = Timeout();
            }
        }

        if (count == 0)
        {
            if (timeout != 0)
            {
                _polling.NoteSlept();
            }

            count = Interop.Sys.EpollWait(_epoll.Fd, events, MaxEvents, timeout);
        }

        _polling.AfterWait(Stopwatch.GetTimestamp() - start, count > 0);
        return count;
    }
}
