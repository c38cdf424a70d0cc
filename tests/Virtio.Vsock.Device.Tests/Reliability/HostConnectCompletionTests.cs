using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.Reliability;

/// <summary>
/// <see cref="IVsockBackendHost.Connect"/>: a host connect's outcome reaches its completion once, on the device's loop
/// thread (the Unix backend answers its host peer there, with no thread-pool hop), for success, refusal and
/// cancellation alike; <see cref="IVsockBackendHost.ConnectAsync"/> keeps its task contract on top of it.
/// </summary>
public sealed class HostConnectCompletionTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AnAcceptedConnectIsCompletedOnTheLoopThreadWithItsPort()
    {
        using var harness = new Harness();
        using GuestListener listener = harness.Guest.Listen(5600);
        var completion = new RecordingCompletion();
        var endpoint = new IdleEndpoint();

        harness.Device.Connect(5600, VsockType.Stream, endpoint, completion, Token);
        GuestSocket accepted = await listener.AcceptAsync(Token);
        (uint? port, Exception? error, string? thread) = await completion.Outcome.WaitAsync(TimeSpan.FromSeconds(20), Token);

        Assert.Null(error);
        Assert.True(port >= 1u << 30, $"host port {port}");
        Assert.Equal(accepted.PeerPort, port);
        Assert.Equal("vsock-3", thread);
        Assert.True(endpoint.Started);
        Assert.Equal(1, completion.Calls);
    }

    [Fact]
    public async Task ARefusedConnectFailsOnTheLoopThreadAndClosesTheEndpoint()
    {
        using var harness = new Harness();
        var completion = new RecordingCompletion();
        var endpoint = new IdleEndpoint();

        harness.Device.Connect(5601, VsockType.Stream, endpoint, completion, Token); // nobody listens: RST
        (uint? port, Exception? error, string? thread) = await completion.Outcome.WaitAsync(TimeSpan.FromSeconds(20), Token);

        Assert.Null(port);
        Assert.Equal(VsockConnectFailure.Refused, Assert.IsType<VsockConnectException>(error).Reason);
        Assert.Equal("vsock-3", thread);
        Assert.True(endpoint.Aborted);
        Assert.Equal(1, completion.Calls);
    }

    [Fact]
    public async Task ACancelledConnectFailsWithOperationCanceledAndTheTaskFormIsCanceled()
    {
        // The guest takes the REQUEST packets on this port and never answers them.
        using var harness = new Harness(new VsockDeviceOptions { ConnectTimeout = TimeSpan.FromMinutes(5) });
        harness.Guest.ClaimRawPort(5602);
        using var cancel = new CancellationTokenSource();
        var completion = new RecordingCompletion();
        var endpoint = new IdleEndpoint();

        harness.Device.Connect(5602, VsockType.Stream, endpoint, completion, cancel.Token);
        using var cancelTask = new CancellationTokenSource();
        Task<uint> task = harness.Device.ConnectAsync(5602, VsockType.Stream, new IdleEndpoint(), cancelTask.Token);
        await Harness.WaitUntil(() => harness.Device.ConnectionCount == 2, 20_000, "both connects wait for the guest");
        cancel.Cancel();
        cancelTask.Cancel();

        (uint? port, Exception? error, string? thread) = await completion.Outcome.WaitAsync(TimeSpan.FromSeconds(20), Token);
        Assert.Null(port);
        Assert.IsAssignableFrom<OperationCanceledException>(error);
        Assert.Equal("vsock-3", thread);
        Assert.True(endpoint.Aborted);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => task.WaitAsync(TimeSpan.FromSeconds(20), Token));
        Assert.Equal(1, completion.Calls);
    }

    [Fact]
    public async Task AConnectToADisposedDeviceFailsAtOnce()
    {
        var harness = new Harness();
        harness.Dispose();
        var completion = new RecordingCompletion();
        var endpoint = new IdleEndpoint();

        harness.Device.Connect(5603, VsockType.Stream, endpoint, completion, Token);
        (uint? port, Exception? error, _) = await completion.Outcome.WaitAsync(TimeSpan.FromSeconds(20), Token);

        Assert.Null(port);
        Assert.Equal(VsockConnectFailure.NotRunning, Assert.IsType<VsockConnectException>(error).Reason);
        Assert.True(endpoint.Aborted);
    }

    [Fact]
    public async Task AConnectThatCannotStartFailsOnceEvenWhenItsEndpointThrowsWhileClosing()
    {
        using var harness = new Harness();
        var completion = new RecordingCompletion();
        var endpoint = new IdleEndpoint { ThrowOnClose = true };

        harness.Device.Connect(5604, (VsockType)9, endpoint, completion, Token); // a type no guest negotiates
        (uint? port, Exception? error, string? thread) = await completion.Outcome.WaitAsync(TimeSpan.FromSeconds(20), Token);

        Assert.Null(port);
        Assert.Equal(VsockConnectFailure.NotRunning, Assert.IsType<VsockConnectException>(error).Reason);
        Assert.Equal("vsock-3", thread);
        Assert.Equal(1, completion.Calls);
        Assert.Equal(1, harness.Metrics.EndpointFaults);
        Assert.False(harness.Device.IsFaulted);

        // The loop goes on: a connect after it works.
        using GuestListener listener = harness.Guest.Listen(5605);
        var next = new RecordingCompletion();
        harness.Device.Connect(5605, VsockType.Stream, new IdleEndpoint(), next, Token);
        Assert.Null((await next.Outcome.WaitAsync(TimeSpan.FromSeconds(20), Token)).Error);
    }

    [Fact]
    public async Task TheDefaultConnectReportsACancelledConnectWithTheCallersToken()
    {
        // A host that implements only ConnectAsync: Connect is the interface's default, over the device's task.
        using var harness = new Harness(new VsockDeviceOptions { ConnectTimeout = TimeSpan.FromMinutes(5) });
        harness.Guest.ClaimRawPort(5606);
        IVsockBackendHost host = new TaskOnlyHost(harness.Device, canceledWith: null);
        using var cancel = new CancellationTokenSource();
        var completion = new RecordingCompletion();
        var endpoint = new IdleEndpoint();

        host.Connect(5606, VsockType.Stream, endpoint, completion, cancel.Token);
        await Harness.WaitUntil(() => harness.Device.ConnectionCount == 1, 20_000, "the connect waits for the guest");
        cancel.Cancel();

        (uint? port, Exception? error, _) = await completion.Outcome.WaitAsync(TimeSpan.FromSeconds(20), Token);
        Assert.Null(port);
        Assert.Equal(cancel.Token, Assert.IsAssignableFrom<OperationCanceledException>(error).CancellationToken);
        Assert.True(endpoint.Aborted);
        Assert.Equal(1, completion.Calls);
    }

    [Fact]
    public async Task TheDefaultConnectReportsATaskTheHostCancelledWithTheTasksToken()
    {
        // The caller did not cancel: the completion must not claim the caller's token, but gets the task's own.
        using var harness = new Harness();
        using var hostCancel = new CancellationTokenSource();
        hostCancel.Cancel();
        IVsockBackendHost host = new TaskOnlyHost(harness.Device, canceledWith: hostCancel.Token);
        using var caller = new CancellationTokenSource();
        var completion = new RecordingCompletion();

        host.Connect(5607, VsockType.Stream, new IdleEndpoint(), completion, caller.Token);

        (uint? port, Exception? error, _) = await completion.Outcome.WaitAsync(TimeSpan.FromSeconds(20), Token);
        Assert.Null(port);
        Assert.Equal(hostCancel.Token, Assert.IsAssignableFrom<OperationCanceledException>(error).CancellationToken);
        Assert.Equal(1, completion.Calls);
    }

    /// <summary>A backend host that implements <see cref="IVsockBackendHost.ConnectAsync"/> only (over the device's, or
    /// as a task already cancelled with <c>canceledWith</c>), so <see cref="IVsockBackendHost.Connect"/> is the
    /// interface's default.</summary>
    private sealed class TaskOnlyHost(VsockDevice device, CancellationToken? canceledWith) : IVsockBackendHost
    {
        public ulong GuestCid => device.GuestCid;

        public IVsockFdPoller FdPoller => device.FdPoller;

        public Task<uint> ConnectAsync(uint guestPort, VsockType type, IVsockEndpoint endpoint, CancellationToken cancellationToken) =>
            canceledWith is { } token ? Task.FromCanceled<uint>(token) : device.ConnectAsync(guestPort, type, endpoint, cancellationToken);
    }

    private sealed class RecordingCompletion : IVsockConnectCompletion
    {
        private readonly TaskCompletionSource<(uint? Port, Exception? Error, string? Thread)> _outcome = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _calls;

        public Task<(uint? Port, Exception? Error, string? Thread)> Outcome => _outcome.Task;

        public int Calls => Volatile.Read(ref _calls);

        public void OnConnected(uint localPort)
        {
            Interlocked.Increment(ref _calls);
            _outcome.TrySetResult((localPort, null, Thread.CurrentThread.Name));
        }

        public void OnFailed(Exception error)
        {
            Interlocked.Increment(ref _calls);
            _outcome.TrySetResult((null, error, Thread.CurrentThread.Name));
        }
    }

    /// <summary>A host end with nothing to say: reads would block, writes are taken.</summary>
    private sealed class IdleEndpoint : IVsockEndpoint
    {
        public bool Started { get; private set; }

        public bool Aborted { get; private set; }

        public bool ThrowOnClose { get; init; }

        public void Start(IVsockEndpointEvents events) => Started = true;

        public EndpointResult Write(VsockPacket packet, int offset, SeqPacketFlags boundary) => EndpointResult.Ok((int)packet.Len - offset);

        public EndpointResult Write(ReadOnlySpan<byte> data, SeqPacketFlags boundary) => EndpointResult.Ok(data.Length);

        public EndpointResult Read(VsockPacket packet, int maxBytes) => EndpointResult.WouldBlock;

        public void RequestReadable()
        {
        }

        public void RequestWritable()
        {
        }

        public void ShutdownSend()
        {
        }

        public void Close(bool abort)
        {
            Aborted |= abort;
            if (ThrowOnClose)
            {
                throw new InvalidOperationException("injected close fault");
            }
        }
    }
}
