using System.Diagnostics;

namespace Virtio.Vsock.Device.Tests.Reliability;

/// <summary>
/// The device loop's adaptive polling: the window grows while events come soon after the loop ran out of work, closes
/// after a wait longer than its maximum, polling catches a fast exchange without a sleep, and an idle loop sleeps
/// (costs no CPU) whatever the window was.
/// </summary>
public sealed class AdaptivePollingTests
{
    private const long TicksPerSecond = 1_000_000_000; // 1 tick = 1 ns in the policy tests
    private const long Us = TicksPerSecond / 1_000_000;

    [Fact]
    public void AMaximumOfZeroNeverOpensTheWindow()
    {
        var polling = new AdaptivePolling(0, TicksPerSecond);
        polling.AfterWait(1 * Us, eventArrived: true);
        polling.AfterWait(1 * Us, eventArrived: true);
        Assert.False(polling.Enabled);
        Assert.Equal(0, polling.WindowTicks);
    }

    [Fact]
    public void TheWindowOpensAt4UsAndDoublesUpToTheMaximumWhileEventsComeAfterIt()
    {
        var polling = new AdaptivePolling(32 * Us, TicksPerSecond);
        Assert.True(polling.Enabled);
        Assert.Equal(0, polling.WindowTicks);

        var windows = new List<long>();
        for (int i = 0; i < 6; i++)
        {
            polling.AfterWait(30 * Us, eventArrived: true);
            windows.Add(polling.WindowTicks / Us);
        }

        Assert.Equal([4, 8, 16, 32, 32, 32], windows);
    }

    [Fact]
    public void AnEventWithinTheWindowKeepsIt()
    {
        var polling = new AdaptivePolling(64 * Us, TicksPerSecond);
        polling.AfterWait(10 * Us, eventArrived: true); // 4
        polling.AfterWait(10 * Us, eventArrived: true); // 8
        polling.AfterWait(10 * Us, eventArrived: true); // 16
        Assert.Equal(16 * Us, polling.WindowTicks);

        polling.AfterWait(10 * Us, eventArrived: true);
        polling.AfterWait(16 * Us, eventArrived: true);
        Assert.Equal(16 * Us, polling.WindowTicks);
    }

    [Theory]
    [InlineData(33, true)] // later than the maximum
    [InlineData(5, false)] // ended by a timeout, not an event
    public void AWaitPollingCouldNotHaveEndedClosesTheWindow(long waitedUs, bool eventArrived)
    {
        var polling = new AdaptivePolling(32 * Us, TicksPerSecond);
        for (int i = 0; i < 4; i++)
        {
            polling.AfterWait(20 * Us, eventArrived: true);
        }

        Assert.Equal(32 * Us, polling.WindowTicks);
        polling.AfterWait(waitedUs * Us, eventArrived);
        Assert.Equal(0, polling.WindowTicks);
    }

    [Fact]
    public void AMaximumBelow4UsOpensAtTheMaximum()
    {
        var polling = new AdaptivePolling(2 * Us, TicksPerSecond);
        polling.AfterWait(1 * Us, eventArrived: true);
        Assert.Equal(2 * Us, polling.WindowTicks);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AFastExchangeIsCaughtByPollingAndWithoutPollingTheLoopSleeps(bool pollingOn)
    {
        // A producer signals as soon as the loop handled its previous signal: every event comes within microseconds
        // of the loop running out of work, well within a 1 ms maximum.
        const int Exchanges = 2000;
        using var loop = NewLoop("poll-exchange", pollingOn ? TimeSpan.FromMilliseconds(1) : TimeSpan.Zero);
        loop.Start();
        var source = new CountingSource();
        Exchange(loop, source, Exchanges);

        long caught = loop.Polling.Caught;
        long slept = loop.Polling.Slept;
        if (pollingOn)
        {
            // Most exchanges are caught on a quiet machine; some still sleep (a preempted producer, the window still
            // growing, a yield that gave the CPU to another test's thread), so the bar is a tenth: without polling it is 0.
            Assert.True(caught >= Exchanges / 10, $"polling caught {caught} of {Exchanges} exchanges (slept {slept})");
            Assert.True(source.LargestWindow > 0, "the exchange opened the window");
        }
        else
        {
            Assert.Equal(0, caught);
            Assert.Equal(0, source.LargestWindow);
            Assert.True(slept > 0, "without polling the loop sleeps between exchanges");
        }
    }

    [Fact]
    public async Task AnIdleLoopSleepsAfterPollingAndUsesNoCpu()
    {
        using var loop = NewLoop("poll-idle", TimeSpan.FromMilliseconds(1));
        loop.Start();
        var source = new CountingSource();
        Exchange(loop, source, 200);
        Assert.True(source.LargestWindow > 0, "the exchange opened the window");

        int tid = LoopThreadId("poll-idle");
        long cpuBefore = ThreadCpuNanoseconds(tid);
        long sleptBefore = loop.Polling.Slept;
        long caughtBefore = loop.Polling.Caught;

        // A 200 ms measuring window with nothing to do: the loop polls out what is left of its window (at most 1 ms),
        // then sleeps once; it wakes no more and catches nothing.
        await Harness.AssertGrowsAtMost(() => loop.Polling.Slept, sleptBefore, 1, TimeSpan.FromMilliseconds(200), "sleeps of the idle loop");
        Assert.Equal(caughtBefore, loop.Polling.Caught);
        long cpu = ThreadCpuNanoseconds(tid) - cpuBefore;
        Assert.True(cpu < 20_000_000, $"the idle loop used {cpu / 1000} us of CPU in a 200 ms window");

        // The event that ends the long sleep closes the window: the next wait sleeps at once.
        Assert.Equal(0, loop.Invoke(() => loop.Polling.WindowTicks));
    }

    [Fact]
    public void ATurnThatPausesPollingMakesTheNextWaitSleepWithTheWindowOpen()
    {
        // The same fast exchange as above, but every turn asks to pause polling: nothing is caught, every wait that
        // found nothing to do sleeps and is counted as a bulk sleep.
        DeviceEventLoop? loop = null;
        using var paused = new DeviceEventLoop(
            "poll-paused",
            0,
            _ => { },
            _ => loop!.PollingPaused = true,
            () => long.MaxValue,
            e => throw new InvalidOperationException("turn fault", e),
            new AdaptivePolling(Stopwatch.Frequency / 1000, Stopwatch.Frequency));
        loop = paused;
        loop.Start();
        var source = new CountingSource();
        Exchange(loop, source, 500);

        Assert.True(source.LargestWindow > 0, "the window opened (the waits were short)");
        Assert.Equal(0, loop.Polling.Caught);
        // Every sleep but the first (before any turn ran) followed a turn that paused polling.
        long slept = loop.Polling.Slept;
        long bulk = loop.Polling.BulkSleeps;
        Assert.True(bulk > 0 && slept - bulk <= 1, $"bulk sleeps {bulk}, sleeps {slept}");
    }

    [Fact]
    public async Task ADeviceSleepsWithoutPollingAfterBulkTurnsAndNotAfterSmallExchanges()
    {
        using var harness = new Harness(new VsockDeviceOptions { PollMax = TimeSpan.FromMilliseconds(1) });
        AdaptivePolling polling = harness.Metrics.Polling!;
        CancellationToken token = Harness.Timeout(60);
        using Backends.InProcess.VsockListener listener = harness.Backend.Listen(1234);
        Task server = Task.Run(async () =>
        {
            await using Backends.InProcess.VsockStream stream = await listener.AcceptAsync(token);
            byte[] buffer = new byte[64 * 1024];
            int n;
            while ((n = await stream.ReadAsync(buffer, token)) > 0)
            {
                if (n == 1)
                {
                    await stream.WriteAsync(buffer.AsMemory(0, 1), token);
                }
            }
        }, token);

        Testing.GuestSocket socket = await harness.Guest.ConnectAsync(1234, cancellationToken: token);
        long bulkBefore = polling.BulkSleeps;
        byte[] one = [42];
        for (int i = 0; i < 200; i++)
        {
            await socket.SendAsync(one, token);
            Assert.Equal(one, await Helpers.ReadExactly(socket, 1, token));
        }

        Assert.Equal(bulkBefore, polling.BulkSleeps);

        // 8 MiB guest -> host in 64 KiB writes: turns move 64 KiB packets.
        byte[] chunk = Helpers.Pattern(64 * 1024, 3);
        for (int i = 0; i < 128; i++)
        {
            await socket.SendAsync(chunk, token);
        }

        await Harness.WaitUntil(() => harness.Metrics.TxBytes >= 200 + (128L * 64 * 1024), what: "the stream reached the device");
        Assert.True(polling.BulkSleeps > bulkBefore, "no wait after a bulk turn skipped polling");
        socket.Shutdown(ShutdownFlags.Send);
        await server.WaitAsync(token);
        await socket.CloseAsync();
    }

    /// <summary>Signals <paramref name="source"/> <paramref name="count"/> times, each as soon as the loop handled the last.</summary>
    private static void Exchange(DeviceEventLoop loop, CountingSource source, int count)
    {
        source.Loop = loop;
        for (int i = 1; i <= count; i++)
        {
            loop.Signal(source);
            WaitUntil(() => Volatile.Read(ref source.Handled) >= i, $"signal {i} handled");
        }
    }

    private static DeviceEventLoop NewLoop(string name, TimeSpan pollMax) => new(
        name,
        0,
        _ => { },
        _ => { },
        () => long.MaxValue,
        e => throw new InvalidOperationException("turn fault", e),
        new AdaptivePolling((long)(pollMax.TotalSeconds * Stopwatch.Frequency), Stopwatch.Frequency));

    private static void WaitUntil(Func<bool> condition, string what)
    {
        long deadline = Stopwatch.GetTimestamp() + (20 * Stopwatch.Frequency);
        var spin = default(SpinWait);
        while (!condition())
        {
            Assert.True(Stopwatch.GetTimestamp() < deadline, "not within 20 s: " + what);
            spin.SpinOnce(sleep1Threshold: -1);
        }
    }

    /// <summary>The kernel thread id of the thread named <paramref name="name"/> in this process.</summary>
    private static int LoopThreadId(string name)
    {
        foreach (string task in Directory.GetDirectories("/proc/self/task"))
        {
            string comm = File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n');
            if (comm == name)
            {
                return int.Parse(Path.GetFileName(task), System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException($"no thread named {name}");
    }

    /// <summary>Nanoseconds the thread ran on a CPU (first field of <c>schedstat</c>).</summary>
    private static long ThreadCpuNanoseconds(int tid) =>
        long.Parse(File.ReadAllText($"/proc/self/task/{tid}/schedstat").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);

    private sealed class CountingSource : ISignalSource
    {
        public int Handled;

        public DeviceEventLoop? Loop { get; set; }

        /// <summary>The largest polling window seen on the loop while handling a signal.</summary>
        public long LargestWindow { get; private set; }

        public void OnSignalled()
        {
            LargestWindow = Math.Max(LargestWindow, Loop?.Polling.WindowTicks ?? 0);
            Volatile.Write(ref Handled, Handled + 1);
        }

        public void OnFault(Exception exception) => throw new InvalidOperationException("unexpected", exception);
    }
}
