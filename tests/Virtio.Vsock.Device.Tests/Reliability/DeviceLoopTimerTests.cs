using System.Collections.Concurrent;
using System.Diagnostics;

namespace Virtio.Vsock.Device.Tests.Reliability;

/// <summary>
/// Backends' timers on the device loop (<see cref="IVsockFdPoller.CreateTimer"/>): run on the loop thread, once per
/// arming, not before their deadline, re-armable and cancellable from any thread, contained when they throw, and
/// still run while the device's own turn is faulted.
/// </summary>
public sealed class DeviceLoopTimerTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly DeviceEventLoop _loop;
    private bool _failTurn;

    public DeviceLoopTimerTests()
    {
        _loop = new DeviceEventLoop("timer-loop", 0, _ => { }, _ => { if (_failTurn) { throw new InvalidOperationException("turn"); } }, () => long.MaxValue, _ => { });
        _loop.Start();
    }

    public void Dispose() => _loop.Dispose();

    private static long In(TimeSpan delay) => Stopwatch.GetTimestamp() + (long)(delay.TotalSeconds * Stopwatch.Frequency);

    [Fact(Timeout = 30_000)]
    public void A_timer_runs_once_on_the_loop_thread_not_before_its_deadline()
    {
        var recorder = new Recorder(_loop);
        using IVsockTimer timer = _loop.CreateTimer(recorder);
        long deadline = In(TimeSpan.FromMilliseconds(100));
        Assert.True(timer.Schedule(deadline));
        Assert.True(recorder.Next(Patience, out Firing firing), "the timer did not run within 20 s");
        Assert.True(firing.OnLoop);
        Assert.True(firing.At >= deadline, "it ran before its deadline");

        // Once per arming: a round trip through the loop later, nothing more ran.
        Sentinel();
        Assert.Equal(1, recorder.Count);

        // Re-armable.
        Assert.True(timer.Schedule(0));
        Assert.True(recorder.Next(Patience, out _), "the re-armed timer did not run within 20 s");
        Assert.Equal(2, recorder.Count);
    }

    [Fact(Timeout = 30_000)]
    public void Rearming_replaces_the_deadline_and_cancel_or_dispose_disarm()
    {
        var cancelledRecorder = new Recorder(_loop);
        var disposedRecorder = new Recorder(_loop);
        var movedRecorder = new Recorder(_loop);
        using IVsockTimer cancelled = _loop.CreateTimer(cancelledRecorder);
        IVsockTimer disposed = _loop.CreateTimer(disposedRecorder);
        using IVsockTimer moved = _loop.CreateTimer(movedRecorder);

        // From a thread that is not the loop's (the test's): cancelled and disposed never run; the moved one runs
        // once, at its later deadline.
        Assert.True(cancelled.Schedule(In(TimeSpan.FromMilliseconds(50))));
        cancelled.Cancel();
        Assert.True(disposed.Schedule(In(TimeSpan.FromMilliseconds(50))));
        disposed.Dispose();
        Assert.False(disposed.Schedule(0));
        Assert.True(moved.Schedule(In(TimeSpan.FromMilliseconds(50))));
        long later = In(TimeSpan.FromMilliseconds(150));
        Assert.True(moved.Schedule(later));

        Assert.True(movedRecorder.Next(Patience, out Firing firing), "the moved timer did not run within 20 s");
        Assert.True(firing.At >= later, "the moved timer ran at its first deadline");
        Sentinel();
        Assert.Equal(1, movedRecorder.Count);
        Assert.Equal(0, cancelledRecorder.Count);
        Assert.Equal(0, disposedRecorder.Count);
    }

    [Fact(Timeout = 30_000)]
    public void A_throwing_timer_is_contained_and_others_still_run_while_the_turn_is_faulted()
    {
        var thrower = new Recorder(_loop) { Throw = true };
        var recorder = new Recorder(_loop);
        using IVsockTimer bad = _loop.CreateTimer(thrower);
        using IVsockTimer good = _loop.CreateTimer(recorder);

        _failTurn = true;
        _loop.Invoke(() => { });
        Assert.True(bad.Schedule(0));
        Assert.True(thrower.Faulted.Wait(Patience, TestContext.Current.CancellationToken), "the throwing timer's fault was not reported within 20 s");
        Assert.True(good.Schedule(0));
        Assert.True(recorder.Next(Patience, out Firing firing), "a timer did not run after another threw (and the turn faulted)");
        Assert.True(firing.OnLoop);
    }

    [Fact(Timeout = 30_000)]
    public void A_stopped_loop_refuses_to_arm()
    {
        var loop = new DeviceEventLoop("stopped", 0, _ => { }, _ => { }, () => long.MaxValue, _ => { });
        loop.Start();
        IVsockTimer timer = loop.CreateTimer(new Recorder(loop));
        loop.Dispose();
        Assert.False(timer.Schedule(0));
        timer.Dispose();
    }

    [Fact(Timeout = 60_000)]
    public void Many_timers_armed_from_many_threads_each_run_exactly_once()
    {
        const int count = 2000;
        var recorders = new Recorder[count];
        var timers = new IVsockTimer[count];
        for (int i = 0; i < count; i++)
        {
            recorders[i] = new Recorder(_loop);
            timers[i] = _loop.CreateTimer(recorders[i]);
        }

        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => Assert.True(timers[i].Schedule(In(TimeSpan.FromMilliseconds(i % 20)))));
        for (int i = 0; i < count; i++)
        {
            Assert.True(recorders[i].Next(Patience, out Firing firing), $"timer {i} did not run within 20 s");
            Assert.True(firing.OnLoop);
        }

        Sentinel();
        Assert.All(recorders, recorder => Assert.Equal(1, recorder.Count));
        foreach (IVsockTimer timer in timers)
        {
            timer.Dispose();
        }
    }

    /// <summary>Waits for one loop round trip: a control action runs after the timers due before it.</summary>
    private void Sentinel()
    {
        var done = new Recorder(_loop);
        using IVsockTimer timer = _loop.CreateTimer(done);
        Assert.True(timer.Schedule(0));
        Assert.True(done.Next(Patience, out _), "the loop did not go round within 20 s");
    }

    private readonly record struct Firing(int Index, long At, bool OnLoop);

    private sealed class Recorder(DeviceEventLoop loop) : IVsockTimerHandler
    {
        private readonly BlockingCollection<Firing> _firings = [];
        private int _count;

        public bool Throw { get; init; }

        public ManualResetEventSlim Faulted { get; } = new();

        public int Count => Volatile.Read(ref _count);

        public void OnTimer()
        {
            if (Throw)
            {
                throw new InvalidOperationException("timer");
            }

            int index = Interlocked.Increment(ref _count);
            _firings.Add(new Firing(index, Stopwatch.GetTimestamp(), loop.IsLoopThread));
        }

        public void OnTimerFault(Exception exception) => Faulted.Set();

        public bool Next(TimeSpan timeout, out Firing firing) => _firings.TryTake(out firing, timeout);
    }
}
