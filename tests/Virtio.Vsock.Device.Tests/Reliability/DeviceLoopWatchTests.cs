using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Virtio.Vsock.Device.Tests.Unix;

namespace Virtio.Vsock.Device.Tests.Reliability;

/// <summary>
/// The device loop's epoll: host sockets it watches for a backend (one-shot requests, delivered on the loop
/// thread, none lost, none unasked) and kick eventfds it waits on for the transport.
/// </summary>
public sealed class DeviceLoopWatchTests : IDisposable
{
    private readonly UnixTestSockets _sockets = new();
    private readonly DeviceEventLoop _loop;
    private readonly List<int> _kicks = [];
    private Thread? _kickThread;

    public DeviceLoopWatchTests()
    {
        _loop = new DeviceEventLoop("test-loop", 3, OnKick, _ => { }, () => long.MaxValue, e => throw new InvalidOperationException("turn", e));
        _loop.Start();
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose()
    {
        _loop.Dispose();
        _sockets.Dispose();
    }

    [Fact]
    public async Task ReadinessIsDeliveredOnTheLoopOncePerRequestAndNeverUnasked()
    {
        (Socket host, Socket device) = await _sockets.PairAsync();
        using (host)
        using (device)
        {
            var recorder = new Recorder(_loop);
            using IVsockFdWatch watch = _loop.Watch(device.SafeHandle, recorder, out int error)!;
            Assert.Equal(0, error);

            // Not asked: data arrives, nothing is delivered (a sentinel socket proves the loop went round since).
            await host.SendAsync("a"u8.ToArray(), Ct);
            await SentinelAsync();
            Assert.Empty(recorder.Events);

            // Asked after the data arrived: delivered at once, on the loop thread.
            Assert.True(watch.RequestReadable());
            Assert.Equal(VsockFdReadiness.Readable, await recorder.NextAsync(0));
            Assert.True(recorder.AllOnLoop);

            // Drained, asked again: nothing until new data, then exactly one delivery.
            Assert.Equal(1, device.Receive(new byte[16]));
            Assert.True(watch.RequestReadable());
            await SentinelAsync();
            Assert.Single(recorder.Events);
            await host.SendAsync("b"u8.ToArray(), Ct);
            Assert.Equal(VsockFdReadiness.Readable, await recorder.NextAsync(1));
            await SentinelAsync();
            Assert.Equal(2, recorder.Events.Length);

            // Writable is there from the start and is delivered when asked.
            Assert.True(watch.RequestWritable());
            Assert.Equal(VsockFdReadiness.Writable, await recorder.NextAsync(2));
        }
    }

    [Fact]
    public async Task ReadinessNobodyAskedForWakesTheLoopOnceNotOnEveryWrite()
    {
        (Socket host, Socket device) = await _sockets.PairAsync();
        using (host)
        using (device)
        {
            var recorder = new Recorder(_loop);
            // Disposed before the sockets even when an assertion fails: a socket whose handle a watch still holds
            // cannot finish closing.
            using var watch = (LoopFdWatch)_loop.Watch(device.SafeHandle, recorder, out int error)!;
            Assert.Equal(0, error);

            // A host peer streams while its connection reads without asking (it waits for guest buffers or credit).
            // The first write is an edge; the loop handles every write before the next (sentinel), so each of the
            // 100 that follow would be an edge of its own if the descriptor still reported input.
            await host.SendAsync("a"u8.ToArray(), Ct);
            await SentinelAsync();
            int eventsAfterFirst = _loop.Invoke(() => watch.EventCount);
            for (int i = 0; i < 100; i++)
            {
                await host.SendAsync("b"u8.ToArray(), Ct);
                await SentinelAsync();
            }

            Assert.Equal(eventsAfterFirst, _loop.Invoke(() => watch.EventCount));
            Assert.Empty(recorder.Events);

            // What arrived is kept: asked for, delivered at once.
            Assert.True(watch.RequestReadable());
            Assert.Equal(VsockFdReadiness.Readable, await recorder.NextAsync(0));

            // Data that comes after that delivery, while input is still switched off, is not lost: asking again
            // (without reading) turns input back on and the descriptor reports it at once.
            await host.SendAsync("c"u8.ToArray(), Ct);
            await SentinelAsync();
            Assert.True(watch.RequestReadable());
            Assert.Equal(VsockFdReadiness.Readable, await recorder.NextAsync(1));

            // Drained and asked: nothing until new data, then one delivery (the request-per-delivery contract holds).
            byte[] sink = new byte[256];
            Assert.Equal(102, device.Receive(sink));
            Assert.True(watch.RequestReadable());
            await SentinelAsync();
            Assert.Equal(2, recorder.Events.Length);
            await host.SendAsync("d"u8.ToArray(), Ct);
            Assert.Equal(VsockFdReadiness.Readable, await recorder.NextAsync(2));

            // Output was never asked for either (a fresh socket is writable): asked now, delivered.
            Assert.True(watch.RequestWritable());
            Assert.Equal(VsockFdReadiness.Writable, await recorder.NextAsync(3));
        }
    }

    [Fact]
    public async Task AHangUpIsReadableAndAFullSocketBecomesWritableWhenDrained()
    {
        (Socket host, Socket device) = await _sockets.PairAsync();
        using (device)
        {
            var recorder = new Recorder(_loop);
            using IVsockFdWatch watch = _loop.Watch(device.SafeHandle, recorder, out _)!;

            // A fresh socket is writable: asked, delivered. (Readiness that arrived and was never asked for is kept,
            // so a later request may be answered by it once; taking it here keeps the check below exact.)
            Assert.True(watch.RequestWritable());
            Assert.Equal(VsockFdReadiness.Writable, await recorder.NextAsync(0));
            device.Blocking = false;
            byte[] chunk = new byte[65536];
            long sent = 0;
            while (true)
            {
                int n = device.Send(chunk, 0, chunk.Length, SocketFlags.None, out SocketError status);
                if (status == SocketError.WouldBlock)
                {
                    break;
                }

                Assert.Equal(SocketError.Success, status);
                sent += n;
            }

            Assert.True(watch.RequestWritable());
            await SentinelAsync();
            Assert.Single(recorder.Events);
            byte[] sink = new byte[65536];
            long drained = 0;
            while (drained < sent)
            {
                drained += await host.ReceiveAsync(sink, Ct);
            }

            Assert.Equal(VsockFdReadiness.Writable, await recorder.NextAsync(1));

            // A hang-up is readable, and says so (a short read after it must not be taken for a drained socket).
            Assert.True(watch.RequestReadable());
            host.Dispose();
            Assert.Equal(VsockFdReadiness.Readable | VsockFdReadiness.HangUp, await recorder.NextAsync(2));
        }
    }

    [Fact]
    public async Task ADisposedWatchDeliversNothingAndAThrowingHandlerIsContained()
    {
        (Socket host1, Socket device1) = await _sockets.PairAsync();
        (Socket host2, Socket device2) = await _sockets.PairAsync();
        using (host1)
        using (device1)
        using (host2)
        using (device2)
        {
            var throwing = new Recorder(_loop) { Throw = true };
            IVsockFdWatch bad = _loop.Watch(device1.SafeHandle, throwing, out _)!;
            Assert.True(bad.RequestReadable());
            await host1.SendAsync("x"u8.ToArray(), Ct);
            Exception fault = await throwing.Fault.Task.WaitAsync(TimeSpan.FromSeconds(20), Ct);
            Assert.IsType<InvalidOperationException>(fault);

            var recorder = new Recorder(_loop);
            IVsockFdWatch good = _loop.Watch(device2.SafeHandle, recorder, out _)!;
            Assert.True(good.RequestReadable());
            good.Dispose();
            Assert.False(good.RequestReadable());
            await host2.SendAsync("y"u8.ToArray(), Ct);
            await SentinelAsync();
            Assert.Empty(recorder.Events);
            bad.Dispose();
            Assert.Equal(0, _loop.WatchCount);
        }

        // A closed handle cannot be watched.
        (Socket host3, Socket device3) = await _sockets.PairAsync();
        host3.Dispose();
        device3.Dispose();
        Assert.Null(_loop.Watch(device3.SafeHandle, new Recorder(_loop), out int error));
        Assert.NotEqual(0, error);
    }

    [Fact]
    public async Task AKickEventFdWakesTheLoopAndIsClosedWhenUnwatched()
    {
        SafeFileHandle kick = NewEventFd();
        Assert.Equal(0, _loop.Invoke(() => _loop.WatchKick(1, kick)));
        for (int i = 1; i <= 100; i++)
        {
            WriteEventFd(kick);
            await WaitForAsync(() => KickCount() >= i, "kick " + i);
        }

        // Each write was awaited before the next: exactly one kick each (every write is a new edge), none twice.
        Assert.Equal(100, KickCount());
        Assert.Equal(_kickThread, LoopThread());
        _loop.Invoke(() => _loop.UnwatchKick(1));
        Assert.True(kick.IsClosed);
    }

    [Fact]
    public async Task AKickCostsOneTurn()
    {
        // The device's kick handler wakes the loop (its Kick sets a bit and calls Wake): the turn that runs right
        // after the kick serves that wake-up; a second, empty turn (and epoll_wait) per kick would be waste.
        int kicks = 0;
        long turns = 0;
        DeviceEventLoop? loop = null;
        loop = new DeviceEventLoop(
            "kick-loop",
            1,
            _ =>
            {
                Interlocked.Increment(ref kicks);
                loop!.Wake();
            },
            _ => Interlocked.Increment(ref turns),
            () => long.MaxValue,
            e => throw new InvalidOperationException("turn", e));
        using DeviceEventLoop scope = loop;
        loop.Start();
        SafeFileHandle kick = NewEventFd();
        Assert.Equal(0, loop.Invoke(() => loop.WatchKick(0, kick)));
        long before = Interlocked.Read(ref turns);
        for (int i = 1; i <= 100; i++)
        {
            WriteEventFd(kick);
            await WaitForAsync(() => Volatile.Read(ref kicks) >= i, "kick " + i);
        }

        // A control action after the last kick: the loop has run every turn the kicks asked for (and one for it).
        loop.Invoke(() => { });
        long perKicks = Interlocked.Read(ref turns) - before;
        Assert.Equal(100, Volatile.Read(ref kicks));
        Assert.InRange(perKicks, 100, 110);
    }

    [Fact]
    public async Task APipeKickIsDrainedSoItsWriterNeverFillsIt()
    {
        int[] fds = new int[2];
        Assert.Equal(0, Pipe2(fds, 0x80000 | 0x800));
        using var readEnd = new SafeFileHandle(fds[0], ownsHandle: true);
        try
        {
            Assert.Equal(0, _loop.Invoke(() => _loop.WatchKick(2, readEnd)));

            // 80 writes of 1 KiB: more than a pipe holds (64 KiB), so each must have been drained by the loop.
            byte[] chunk = new byte[1024];
            for (int i = 1; i <= 80; i++)
            {
                Assert.Equal(chunk.Length, WriteBytes(fds[1], chunk));
                await WaitForAsync(() => KickCount() >= i, "pipe kick " + i);
            }

            _loop.Invoke(() => _loop.UnwatchKick(2));
            Assert.True(readEnd.IsClosed);
        }
        finally
        {
            Close(fds[1]);
        }
    }

    private void OnKick(int queue)
    {
        lock (_kicks)
        {
            _kicks.Add(queue);
            _kickThread = Thread.CurrentThread;
        }
    }

    private int KickCount()
    {
        lock (_kicks)
        {
            return _kicks.Count;
        }
    }

    private Thread LoopThread() => _loop.Invoke(() => Thread.CurrentThread);

    /// <summary>A second watch is made readable and its delivery awaited: the loop has handled every event before it.</summary>
    private async Task SentinelAsync()
    {
        (Socket host, Socket device) = await _sockets.PairAsync();
        using (host)
        using (device)
        {
            var recorder = new Recorder(_loop);
            using IVsockFdWatch watch = _loop.Watch(device.SafeHandle, recorder, out _)!;
            Assert.True(watch.RequestReadable());
            await host.SendAsync("s"u8.ToArray(), Ct);
            Assert.Equal(VsockFdReadiness.Readable, await recorder.NextAsync(0));
        }
    }

    private static async Task WaitForAsync(Func<bool> condition, string what)
    {
        long deadline = Environment.TickCount64 + 20_000;
        while (!condition())
        {
            Assert.True(Environment.TickCount64 < deadline, "not in time (deadline 20 s): " + what);
            await Task.Delay(1, Ct); // poll interval under the deadline above
        }
    }

    private static SafeFileHandle NewEventFd()
    {
        int fd = EventFd(0, 0x80000 | 0x800);
        Assert.True(fd >= 0, "eventfd failed");
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    private static unsafe void WriteEventFd(SafeHandle handle)
    {
        ulong one = 1;
        Assert.Equal(8, Write((int)handle.DangerousGetHandle(), &one, 8));
    }

    private static unsafe nint WriteBytes(int fd, byte[] data)
    {
        fixed (byte* p = data)
        {
            return Write(fd, p, (nuint)data.Length);
        }
    }

    [DllImport("libc", EntryPoint = "pipe2", SetLastError = true)]
    private static extern int Pipe2(int[] fds, int flags);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);

    [DllImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    private static extern int EventFd(uint initial, int flags);

    [DllImport("libc", EntryPoint = "write", SetLastError = true)]
    private static extern unsafe nint Write(int fd, void* buffer, nuint count);

    private sealed class Recorder(DeviceEventLoop loop) : IVsockFdHandler
    {
        private readonly object _lock = new();
        private readonly List<VsockFdReadiness> _events = [];
        private TaskCompletionSource _signal = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public bool Throw { get; init; }

        public bool AllOnLoop { get; private set; } = true;

        public TaskCompletionSource<Exception> Fault { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public VsockFdReadiness[] Events
        {
            get
            {
                lock (_lock)
                {
                    return [.. _events];
                }
            }
        }

        public void OnReady(VsockFdReadiness readiness)
        {
            if (Throw)
            {
                throw new InvalidOperationException("handler");
            }

            lock (_lock)
            {
                AllOnLoop &= loop.IsLoopThread;
                _events.Add(readiness);
                _signal.TrySetResult();
            }
        }

        public void OnFault(Exception exception) => Fault.TrySetResult(exception);

        public async Task<VsockFdReadiness> NextAsync(int index)
        {
            long deadline = Environment.TickCount64 + 20_000;
            while (true)
            {
                Task wait;
                lock (_lock)
                {
                    if (_events.Count > index)
                    {
                        return _events[index];
                    }

                    _signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    wait = _signal.Task;
                }

                Assert.True(Environment.TickCount64 < deadline, $"event {index} not delivered within the 20 s deadline");
                await wait.WaitAsync(TimeSpan.FromSeconds(20), Ct);
            }
        }
    }
}
