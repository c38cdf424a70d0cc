using System.Diagnostics;

namespace Virtio.Vsock.Device.Tests.Reliability;

/// <summary>The device loop's promises: no lost wake-up, no caller left waiting after it stops, no exception escaping it.</summary>
public sealed class DeviceEventLoopTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(32)]
    public void AMillionSignalsToAnIdleLoopAreEachHandled(int pollMaxUs)
    {
        // Each producer signals its source and waits until the loop handled it before signalling again, so the
        // loop is idle (asleep, polling, or about to sleep) at every signal: a lost wake-up leaves a producer waiting.
        const int Producers = 2;
        const int PerProducer = 500_000;
        using var loop = new DeviceEventLoop(
            "test-loop",
            0,
            _ => { },
            _ => { },
            () => long.MaxValue,
            e => throw new InvalidOperationException("turn fault", e),
            new AdaptivePolling(pollMaxUs * Stopwatch.Frequency / 1_000_000, Stopwatch.Frequency));
        loop.Start();
        var sources = Enumerable.Range(0, Producers).Select(_ => new CountingSource()).ToArray();
        string? failure = null;
        var threads = sources.Select(source => new Thread(() =>
        {
            for (int i = 1; i <= PerProducer; i++)
            {
                loop.Signal(source);
                long deadline = Stopwatch.GetTimestamp() + (20 * Stopwatch.Frequency);
                var spin = default(SpinWait);
                while (Volatile.Read(ref source.Handled) < i)
                {
                    if (Stopwatch.GetTimestamp() > deadline)
                    {
                        failure = $"signal {i} was not handled within 20 s: the loop slept through its wake-up";
                        return;
                    }

                    spin.SpinOnce(sleep1Threshold: -1);
                }
            }
        })).ToArray();
        foreach (Thread thread in threads)
        {
            thread.Start();
        }

        foreach (Thread thread in threads)
        {
            thread.Join();
        }

        Assert.Null(failure);
        Assert.All(sources, source => Assert.Equal(PerProducer, source.Handled));
    }

    [Fact]
    public async Task DisposeCompletesEveryPendingCallWithObjectDisposedException()
    {
        using var gate = new ManualResetEventSlim(false);
        using var inTurn = new ManualResetEventSlim(false);
        var loop = new DeviceEventLoop(
            "test-loop",
            0,
            _ => { },
            _ =>
            {
                inTurn.Set();
                gate.Wait(TimeSpan.FromSeconds(30));
            },
            () => long.MaxValue,
            _ => { });
        loop.Start();
        loop.Wake();
        Assert.True(inTurn.Wait(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken), "the loop ran a turn");

        // The loop is busy in its turn: these queue up behind it.
        Task<int> invoked = Task.Run(() => loop.Invoke(() => 1), TestContext.Current.CancellationToken);
        var abandoned = new TaskCompletionSource<ObjectDisposedException>(TaskCreationOptions.RunContinuationsAsynchronously);
        loop.Post(() => abandoned.TrySetException(new InvalidOperationException("ran after dispose")), abandon: e => abandoned.TrySetResult(e));
        Task disposed = Task.Run(loop.Dispose, TestContext.Current.CancellationToken);
        await WaitFor(() => loop.IsStopping, "Dispose started");
        gate.Set();
        await disposed.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);

        await Assert.ThrowsAsync<ObjectDisposedException>(() => invoked.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken));
        Assert.IsType<ObjectDisposedException>(await abandoned.Task.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken));
        Assert.Throws<ObjectDisposedException>(() => loop.Invoke(() => 2));
    }

    [Fact]
    public async Task ASourceThatThrowsIsHandedItsFaultAndTheLoopGoesOn()
    {
        int turns = 0;
        using var loop = new DeviceEventLoop("test-loop", 0, _ => { }, _ => Interlocked.Increment(ref turns), () => long.MaxValue, _ => { });
        loop.Start();
        var throwing = new ThrowingSource();
        loop.Signal(throwing);
        await WaitFor(() => throwing.Fault is not null, "OnFault called");
        Assert.Equal("boom", throwing.Fault!.Message);
        Assert.Equal(7, loop.Invoke(() => 7));
        Assert.True(Volatile.Read(ref turns) > 0);
    }

    [Fact]
    public async Task ATurnThatThrowsIsReportedOnceAndControlActionsStillRun()
    {
        int faults = 0;
        int turns = 0;
        using var loop = new DeviceEventLoop(
            "test-loop",
            0,
            _ => { },
            _ =>
            {
                Interlocked.Increment(ref turns);
                throw new InvalidOperationException("turn");
            },
            () => long.MaxValue,
            _ => Interlocked.Increment(ref faults));
        loop.Start();
        loop.Wake();
        await WaitFor(() => Volatile.Read(ref faults) == 1, "fault reported");
        Assert.Equal(3, loop.Invoke(() => 3));
        loop.Wake();
        Assert.Equal(4, loop.Invoke(() => 4));
        Assert.Equal(1, Volatile.Read(ref turns));
        Assert.Equal(1, Volatile.Read(ref faults));

        loop.Invoke(loop.ClearFault);
        loop.Wake();
        await WaitFor(() => Volatile.Read(ref turns) == 2, "turns run again after ClearFault");
    }

    private static async Task WaitFor(Func<bool> condition, string what)
    {
        long deadline = Environment.TickCount64 + 20_000;
        while (!condition())
        {
            Assert.True(Environment.TickCount64 < deadline, "not in time (deadline 20 s): " + what);
            await Task.Delay(2, TestContext.Current.CancellationToken); // poll interval under the deadline above
        }
    }

    private sealed class CountingSource : ISignalSource
    {
        public int Handled;

        public void OnSignalled() => Handled++;

        public void OnFault(Exception exception) => throw new InvalidOperationException("unexpected", exception);
    }

    private sealed class ThrowingSource : ISignalSource
    {
        public Exception? Fault { get; private set; }

        public void OnSignalled() => throw new InvalidOperationException("boom");

        public void OnFault(Exception exception) => Fault = exception;
    }
}
