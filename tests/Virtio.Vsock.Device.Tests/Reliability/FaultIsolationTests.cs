using Virtio.Vsock.Device.Backends.InProcess;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.Reliability;

/// <summary>A fault in one connection resets that connection; a fault in one device stops that device (issue 10, defect 3).</summary>
public sealed class FaultIsolationTests
{
    private const uint Port = 5300;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // the endpoint takes TX runs: the fault comes from the run write at the end of the TX batch
    public async Task AHostEndpointThatThrowsResetsOnlyItsConnection(bool writesRuns)
    {
        var inner = new InProcessBackend();
        var backend = new EndpointWrappingBackend<ThrowingEndpoint>(inner, endpoint => new ThrowingEndpoint(endpoint, writesRuns));
        using var listener = inner.Listen(Port);
        (GuestSimulator guest, VsockDevice device) = GuestSimulator.Create(new VsockDeviceOptions(), backend);
        using var _ = guest;
        using var __ = device;

        GuestSocket doomed = await guest.ConnectAsync(Port, cancellationToken: Token);
        await using VsockStream doomedHost = await listener.AcceptAsync(Token);
        GuestSocket healthy = await guest.ConnectAsync(Port, cancellationToken: Token);
        await using VsockStream healthyHost = await listener.AcceptAsync(Token);

        backend.Endpoints[0].ThrowOnWrite = true;
        await doomed.SendAsync(new byte[] { 1, 2, 3 }, Token);
        await Harness.WaitUntil(() => doomed.WasReset, 20_000, "the guest socket whose host endpoint threw is reset");

        await healthy.SendAsync(new byte[] { 42 }, Token);
        Assert.Equal(new byte[] { 42 }, await Helpers.ReadExactly(healthyHost, 1, Token));
        await healthyHost.WriteAsync(new byte[] { 43 }, Token);
        Assert.Equal(new byte[] { 43 }, await Helpers.ReadExactly(healthy, 1, Token));

        Assert.Equal(1, device.Metrics.EndpointFaults);
        Assert.Equal(0, device.Metrics.DeviceFaults);
        Assert.False(device.IsFaulted);
        Assert.Equal(writesRuns, backend.Endpoints[0].RunWrites > 0);
    }

    [Fact]
    public async Task AFaultInOneDeviceStopsThatDeviceAndNotAnother()
    {
        var failingBackend = new InProcessBackend();
        using var failingListener = failingBackend.Listen(Port);
        var failingGuest = new GuestSimulator();
        var notifier = new FailingNotifier(failingGuest);
        var failing = new VsockDevice(new VsockDeviceOptions(), failingBackend, notifier);
        failingGuest.Attach(failing);
        using var _ = failingGuest;
        using var __ = failing;
        var faulted = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        failing.Faulted += (_, exception) => faulted.TrySetResult(exception);

        using var other = new Harness(new VsockDeviceOptions { GuestCid = 4 });
        using var otherListener = other.Backend.Listen(Port);

        GuestSocket socket = await failingGuest.ConnectAsync(Port, cancellationToken: Token);
        await using VsockStream host = await failingListener.AcceptAsync(Token);
        notifier.Armed = true;
        await socket.SendAsync(new byte[] { 1 }, Token);
        Exception fault = await faulted.Task.WaitAsync(TimeSpan.FromSeconds(20), Token);
        Assert.Contains("injected", fault.Message, StringComparison.Ordinal);
        Assert.True(failing.IsFaulted);
        Assert.Equal(1, failing.Metrics.DeviceFaults);
        Assert.Equal(0, failing.ConnectionCount);

        // Its host side sees the connection end; the other device carries traffic as before.
        var buffer = new byte[8];
        Exception? ended = await Record.ExceptionAsync(async () => Assert.Equal(0, await host.ReadAsync(buffer, Token).AsTask().WaitAsync(TimeSpan.FromSeconds(20), Token)));
        Assert.True(ended is null or IOException, $"host stream of the stopped device: {ended}");

        GuestSocket otherSocket = await other.Guest.ConnectAsync(Port, cancellationToken: Token);
        await using VsockStream otherHost = await otherListener.AcceptAsync(Token);
        await otherSocket.SendAsync(new byte[] { 7 }, Token);
        Assert.Equal(new byte[] { 7 }, await Helpers.ReadExactly(otherHost, 1, Token));
        Assert.Equal(0, other.Metrics.DeviceFaults);
    }

    private sealed class ThrowingEndpoint(IVsockEndpoint inner, bool writesRuns) : IVsockEndpoint
    {
        public volatile bool ThrowOnWrite;

        public bool WritesFromManyPackets => writesRuns;

        public int RunWrites { get; private set; }

        public EndpointResult Write(ReadOnlySpan<VsockPacket> packets)
        {
            RunWrites++;
            return ThrowOnWrite ? throw new InvalidOperationException("injected endpoint fault") : inner.Write(packets[0], 0, SeqPacketFlags.None);
        }

        public void Start(IVsockEndpointEvents events) => inner.Start(events);

        public EndpointResult Write(VsockPacket packet, int offset, SeqPacketFlags boundary) =>
            ThrowOnWrite ? throw new InvalidOperationException("injected endpoint fault") : inner.Write(packet, offset, boundary);

        public EndpointResult Write(ReadOnlySpan<byte> data, SeqPacketFlags boundary) =>
            ThrowOnWrite ? throw new InvalidOperationException("injected endpoint fault") : inner.Write(data, boundary);

        public EndpointResult Read(VsockPacket packet, int maxBytes) => inner.Read(packet, maxBytes);

        public void RequestReadable() => inner.RequestReadable();

        public void RequestWritable() => inner.RequestWritable();

        public void ShutdownSend() => inner.ShutdownSend();

        public void Close(bool abort) => inner.Close(abort);
    }

    private sealed class FailingNotifier(IVsockDeviceNotifier inner) : IVsockDeviceNotifier
    {
        public volatile bool Armed;

        public void NotifyQueue(int queueIndex)
        {
            if (Armed)
            {
                throw new InvalidOperationException("injected device fault");
            }

            inner.NotifyQueue(queueIndex);
        }
    }
}
