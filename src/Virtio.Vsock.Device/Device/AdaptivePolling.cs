namespace Virtio.Vsock.Device;

/// <summary>
/// How long the device loop polls (<c>epoll_wait</c> with a zero timeout) before it sleeps: a window that grows while
/// events keep arriving soon after the loop ran out of work, and closes as soon as one arrives too late for polling
/// to have caught it.
/// </summary>
/// <remarks>
/// <para>Why: waking a sleeping thread costs the waker a cross-CPU wake-up and the sleeper a context switch, and on a
/// virtual machine both cost many times what they cost on bare metal (an idle virtual CPU halts, and resuming it goes
/// through the hypervisor). A request/response exchange pays that twice per round trip. Polling for a few tens of
/// microseconds after the last piece of work catches the next event on a running CPU. The idea and its rule of
/// growth are those of QEMU's adaptive polling of its event loops (<c>poll-max-ns</c>).</para>
/// <para>The rule, applied after every wait that could have slept, with the time the wait took (polling included):</para>
/// <list type="bullet">
/// <item>the event came within the window: the window is right, keep it;</item>
/// <item>the event came later than the maximum, or no event came (a timer's timeout ended the wait): polling would
/// not have caught it, and an idle loop must not spin, so the window closes;</item>
/// <item>otherwise (after the window, within the maximum): double the window, opening it at 4 us, up to the
/// maximum.</item>
/// </list>
/// <para>Polling does not pay during a bulk transfer: there, an answer taken at once is an answer taken alone (one
/// RX buffer the guest just gave back, one TX chain it just queued), while one taken after a sleep comes with more
/// work behind it, and both sides spend less per byte. So a turn that moved at least <see cref="BulkTurnBytes"/> of
/// payload makes the next wait sleep at once (<see cref="DeviceEventLoop.PollingPaused"/>); the window itself is
/// kept for when the exchange turns small again. With polling after every turn, three alternating sets of seven
/// lost a fifth or more of the host -> guest 4 KiB rate; this rule kept request/response latency and guest -> host
/// throughput's gains and lost less there. The figures, and what polling still costs host -> guest 4 KiB, are in the
/// README (Performance), measured against polling off in the same runs.</para>
/// <para><b>Owns:</b> the window and three counters. <b>Must never:</b> let the loop poll longer than the maximum in one
/// wait, or poll at all after a wait longer than the maximum (an idle loop sleeps). A maximum of zero turns polling
/// off. Runs on the device loop only; the counters may be read from any thread.</para>
/// </remarks>
internal sealed class AdaptivePolling
{
    private readonly long _maxTicks;
    private readonly long _firstWindowTicks;
    private long _caught;
    private long _slept;
    private long _bulkSleeps;

    /// <summary>The payload a turn moves (both ways) from which its next wait sleeps without polling: 16 KiB, four
    /// 4 KiB RX buffers or a quarter of a 64 KiB packet; a request/response exchange moves far less per turn.</summary>
    public const int BulkTurnBytes = 16 * 1024;

    /// <summary>Creates the policy.</summary>
    /// <param name="maxTicks">The longest window, in ticks of <paramref name="ticksPerSecond"/>; 0 turns polling off.</param>
    /// <param name="ticksPerSecond">The tick frequency (<see cref="System.Diagnostics.Stopwatch.Frequency"/>).</param>
    public AdaptivePolling(long maxTicks, long ticksPerSecond)
    {
        _maxTicks = Math.Max(0, maxTicks);
        _firstWindowTicks = Math.Min(_maxTicks, Math.Max(1, ticksPerSecond * 4 / 1_000_000));
        YieldGaveAwayTicks = Math.Max(1, ticksPerSecond * 10 / 1_000_000);
    }

    /// <summary>How long a yield of the CPU between two polls takes when another thread ran meanwhile (10 us: a yield
    /// with nobody else to run returns within a few): polling then stops for this wait.</summary>
    public long YieldGaveAwayTicks { get; }

    /// <summary>Whether polling is on at all.</summary>
    public bool Enabled => _maxTicks > 0;

    /// <summary>How long the next wait polls before it sleeps, in ticks (0: it sleeps at once).</summary>
    public long WindowTicks { get; private set; }

    /// <summary>Waits that polling ended: an event came before the window closed, and the loop did not sleep.</summary>
    public long Caught => Volatile.Read(ref _caught);

    /// <summary>Waits in which the loop slept (with polling off, every wait that found nothing to do).</summary>
    public long Slept => Volatile.Read(ref _slept);

    /// <summary>Waits that slept without polling because the turn before moved a bulk transfer's worth.</summary>
    public long BulkSleeps => Volatile.Read(ref _bulkSleeps);

    /// <summary>Counts a wait that skipped polling after a bulk turn.</summary>
    public void NoteBulkSleep() => Volatile.Write(ref _bulkSleeps, _bulkSleeps + 1);

    /// <summary>Counts a wait that polling ended.</summary>
    public void NoteCaught() => Volatile.Write(ref _caught, _caught + 1);

    /// <summary>Counts a wait that slept.</summary>
    public void NoteSlept() => Volatile.Write(ref _slept, _slept + 1);

    /// <summary>Adjusts the window after a wait that ended <paramref name="waitedTicks"/> after it began.</summary>
    /// <param name="waitedTicks">The time from the start of the wait (polling included) to the end of the wait.</param>
    /// <param name="eventArrived">Whether an event ended the wait (<see langword="false"/>: its timeout did).</param>
    public void AfterWait(long waitedTicks, bool eventArrived)
    {
        if (_maxTicks == 0)
        {
            return;
        }

        if (!eventArrived || waitedTicks > _maxTicks)
        {
            WindowTicks = 0;
        }
        else if (waitedTicks > WindowTicks)
        {
            WindowTicks = WindowTicks == 0 ? _firstWindowTicks : Math.Min(_maxTicks, WindowTicks * 2);
        }
    }
}
