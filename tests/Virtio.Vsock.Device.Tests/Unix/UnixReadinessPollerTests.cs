using System.Net.Sockets;
using Virtio.Vsock.Backends.Unix;

namespace Virtio.Vsock.Device.Tests.Unix;

public sealed class UnixReadinessPollerTests : IDisposable
{
    private readonly UnixTestSockets _sockets = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _sockets.Dispose();

    /// <summary>
    /// A sentinel: a second registration on <paramref name="poller"/> is made readable and its event awaited. The
    /// poller has then waited for readiness after everything requested before, so an event it owed (or wrongly made)
    /// for an earlier request would have been delivered by now.
    /// </summary>
    private async Task PollerRoundAsync(UnixReadinessPoller poller)
    {
        (Socket host, Socket device) = await _sockets.PairAsync();
        using (host)
        using (device)
        {
            var recorder = new Recorder();
            Assert.True(poller.TryRegister(device, recorder.On, out UnixPollRegistration? registration).IsOk);
            using (registration)
            {
                Assert.True(registration!.RequestReadable().IsOk);
                await host.SendAsync("s"u8.ToArray(), Ct);
                Assert.Equal(UnixReadiness.Readable, await recorder.NextAsync(0));
            }
        }
    }

    private sealed class Recorder
    {
        private readonly object _lock = new();
        private readonly List<UnixReadiness> _events = [];
        private TaskCompletionSource _signal = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void On(UnixReadiness readiness)
        {
            lock (_lock)
            {
                _events.Add(readiness);
                _signal.TrySetResult();
            }
        }

        public UnixReadiness[] Events
        {
            get
            {
                lock (_lock)
                {
                    return [.. _events];
                }
            }
        }

        public async Task<UnixReadiness> NextAsync(int index, int timeoutMs = 20_000)
        {
            long until = Environment.TickCount64 + timeoutMs;
            while (true)
            {
                Task wait;
                lock (_lock)
                {
                    if (_events.Count > index)
                    {
                        return _events[index];
                    }

                    if (_signal.Task.IsCompleted)
                    {
                        _signal = new(TaskCreationOptions.RunContinuationsAsynchronously);
                    }

                    wait = _signal.Task;
                }

                long remaining = until - Environment.TickCount64;
                Assert.True(remaining > 0, $"no event #{index} in time");
                await wait.WaitAsync(TimeSpan.FromMilliseconds(remaining));
            }
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task Readable_fires_once_when_data_arrives()
    {
        using var poller = new UnixReadinessPoller();
        (Socket host, Socket device) = await _sockets.PairAsync();
        using (host)
        using (device)
        {
            var recorder = new Recorder();
            Assert.True(poller.TryRegister(device, recorder.On, out UnixPollRegistration? registration).IsOk);
            using (registration)
            {
                Assert.True(registration!.RequestReadable().IsOk);
                await PollerRoundAsync(poller);
                Assert.Empty(recorder.Events);

                await host.SendAsync("x"u8.ToArray(), Ct);
                Assert.Equal(UnixReadiness.Readable, await recorder.NextAsync(0));

                // One-shot: data still unread, but no second callback without a new request.
                await PollerRoundAsync(poller);
                Assert.Single(recorder.Events);
                Assert.Equal(UnixReadiness.None, registration.Pending);

                // Level-triggered: a new request fires at once while data is pending.
                registration.RequestReadable();
                Assert.Equal(UnixReadiness.Readable, await recorder.NextAsync(1));
            }

            Assert.Equal(0, poller.Count);
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task Writable_fires_when_a_full_socket_drains()
    {
        using var poller = new UnixReadinessPoller();
        (Socket host, Socket device) = await _sockets.PairAsync();
        using (host)
        using (device)
        {
            var recorder = new Recorder();
            Assert.True(poller.TryRegister(device, recorder.On, out UnixPollRegistration? registration).IsOk);
            using (registration)
            {
                byte[] chunk = new byte[65536];
                long sent = 0;
                UnixIoResult result;
                while ((result = UnixSocketIo.Send(device, chunk)).IsOk)
                {
                    sent += result.Bytes;
                }

                Assert.Equal(UnixIoStatus.WouldBlock, result.Status);
                registration!.RequestWritable();
                await PollerRoundAsync(poller);
                Assert.Empty(recorder.Events);

                await UnixTestSockets.ReadExactlyOrEofAsync(host, (int)sent);
                Assert.Equal(UnixReadiness.Writable, await recorder.NextAsync(0));
                Assert.True(UnixSocketIo.Send(device, chunk).IsOk);
            }
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task Both_requests_are_delivered_separately_and_the_other_stays_armed()
    {
        using var poller = new UnixReadinessPoller();
        (Socket host, Socket device) = await _sockets.PairAsync();
        using (host)
        using (device)
        {
            var recorder = new Recorder();
            Assert.True(poller.TryRegister(device, recorder.On, out UnixPollRegistration? registration).IsOk);
            using (registration)
            {
                registration!.RequestReadable();
                registration.RequestWritable();

                // Writable at once (empty send buffer); readable stays armed until data comes.
                Assert.Equal(UnixReadiness.Writable, await recorder.NextAsync(0));
                Assert.Equal(UnixReadiness.Readable, registration.Pending);
                await host.SendAsync("y"u8.ToArray(), Ct);
                Assert.Equal(UnixReadiness.Readable, await recorder.NextAsync(1));
            }
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task Peer_close_wakes_a_readable_request()
    {
        using var poller = new UnixReadinessPoller();
        (Socket host, Socket device) = await _sockets.PairAsync();
        using (device)
        {
            var recorder = new Recorder();
            Assert.True(poller.TryRegister(device, recorder.On, out UnixPollRegistration? registration).IsOk);
            using (registration)
            {
                registration!.RequestReadable();
                host.Dispose();
                Assert.Equal(UnixReadiness.Readable, await recorder.NextAsync(0));
                Assert.Equal(UnixIoStatus.EndOfStream, UnixSocketIo.Receive(device, new byte[4]).Status);
            }
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task A_throwing_callback_does_not_stop_the_poller_and_disposal_is_clean()
    {
        var poller = new UnixReadinessPoller();
        (Socket host1, Socket device1) = await _sockets.PairAsync();
        (Socket host2, Socket device2) = await _sockets.PairAsync();
        using (host1)
        using (device1)
        using (host2)
        using (device2)
        {
            int badCalls = 0;
            Assert.True(poller.TryRegister(device1, _ =>
            {
                Interlocked.Increment(ref badCalls);
                throw new InvalidOperationException("boom");
            }, out UnixPollRegistration? bad).IsOk);
            var recorder = new Recorder();
            Assert.True(poller.TryRegister(device2, recorder.On, out UnixPollRegistration? good).IsOk);
            bad!.RequestReadable();
            await host1.SendAsync("a"u8.ToArray(), Ct);
            await Harness.WaitUntil(() => Volatile.Read(ref badCalls) == 1, what: "the throwing callback ran");
            good!.RequestReadable();
            await host2.SendAsync("b"u8.ToArray(), Ct);
            Assert.Equal(UnixReadiness.Readable, await recorder.NextAsync(0));

            Assert.Equal(2, poller.Count);
            poller.Dispose();
            Assert.Equal(0, poller.Count);
            Assert.Equal(UnixIoStatus.SocketClosed, good.RequestReadable().Status);
            good.Dispose();
            bad.Dispose();
            Assert.Equal(UnixIoStatus.SocketClosed, poller.TryRegister(device1, _ => { }, out _).Status);

            // The sockets still work: the registration's handle reference was released.
            Assert.True(UnixSocketIo.Send(device1, "ok"u8).IsOk);
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task A_disposed_socket_cannot_be_registered()
    {
        using var poller = new UnixReadinessPoller();
        (Socket host, Socket device) = await _sockets.PairAsync();
        host.Dispose();
        device.Dispose();
        Assert.Equal(UnixIoStatus.SocketClosed, poller.TryRegister(device, _ => { }, out UnixPollRegistration? registration).Status);
        Assert.Null(registration);
    }
}
