using System.Net.Sockets;
using Virtio.Memory;

namespace Vhost.User.Tests;

public sealed class LifecycleTests
{
    [Fact(Timeout = 30_000)]
    public async Task DisconnectResetsTheDeviceAndTheNextFrontendStartsClean()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        var rings = harness.StartDevice(true, 0, 1);
        GuestMemory memory = harness.Backend.Memory!;
        Assert.True(harness.Server.IsFrontendConnected);

        harness.Frontend.Dispose();
        Harness.WaitUntil(() => harness.Server.FrontendsServed == 1, "the connection to end");
        Assert.Equal(1, harness.Backend.ResetCount);
        Assert.Empty(harness.Backend.Started);
        Assert.Null(harness.Backend.Memory);
        Assert.True(memory.IsDisposed, "guest memory must be unmapped once the backend and the connection let go");
        Assert.False(harness.Server.IsFrontendConnected);

        // Kick threads are gone (the reset joined them and closed their descriptors before the backend's Reset ran):
        // a kick on the old eventfd stays unread and reaches nobody.
        int kicks = harness.Backend.Kicks(0);
        Descriptors.Signal(rings[0].Kick.Fd);
        Harness.AssertKickUnread(rings[0].Kick);
        Assert.Equal(kicks, harness.Backend.Kicks(0));

        harness.Reconnect();
        harness.Handshake();
        harness.StartDevice(true, 0, 1);
        Assert.Equal(2, harness.Backend.Started.Count);
        Assert.True(harness.Backend.Enabled[0]);
    }

    [Fact(Timeout = 30_000)]
    public async Task ResetDeviceStopsEverythingButKeepsTheConnection()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        harness.StartDevice(true, 0, 1);
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.ResetDevice, []));
        Assert.Equal(1, harness.Backend.ResetCount);
        Assert.Empty(harness.Backend.Started);
        Assert.Null(harness.Backend.Memory);
        Assert.True(harness.Server.IsFrontendConnected);

        // Ring state is forgotten: a kick without a new SET_VRING_NUM is refused.
        Assert.NotEqual(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringKick, FakeFrontend.U64(0), harness.NewEventFd().Fd));

        // Protocol features survive (REPLY_ACK still answers); the device starts again.
        harness.StartDevice(true, 0, 1);
        Assert.Equal(2, harness.Backend.Started.Count);
    }

    [Fact(Timeout = 30_000)]
    public async Task ResetOwnerResetsTheDevice()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        harness.StartDevice(true, 0);
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.ResetOwner, []));
        Assert.Equal(1, harness.Backend.ResetCount);
        Assert.Empty(harness.Backend.Started);
    }

    [Fact(Timeout = 30_000)]
    public async Task ResetDeviceNeedsTheProtocolFeatureOffered()
    {
        await Task.Yield();
        var backend = new FakeBackend { ProtocolFeatures = VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.Config };
        await using Harness harness = Harness.Start(backend);
        harness.Handshake(VhostUserProtocolFeatures.ReplyAck);
        Assert.NotEqual(0UL, harness.Frontend.Ack(VhostUserRequest.ResetDevice, []));
        Assert.Equal(0, backend.ResetCount);
    }

    [Fact(Timeout = 30_000)]
    public async Task StatusIsStoredWhenOffered()
    {
        await Task.Yield();
        var backend = new FakeBackend();
        backend.ProtocolFeatures |= VhostUserProtocolFeatures.Status | VhostUserProtocolFeatures.LogShmfd;
        await using Harness harness = Harness.Start(backend);

        // Bits the protocol layer cannot honour are not advertised.
        Assert.Equal(0UL, harness.Frontend.GetU64(VhostUserRequest.GetProtocolFeatures) & (ulong)VhostUserProtocolFeatures.LogShmfd);
        harness.Frontend.SetU64(VhostUserRequest.SetProtocolFeatures, (ulong)(Harness.AllProtocolFeatures | VhostUserProtocolFeatures.Status));
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetStatus, FakeFrontend.U64(0xf)));
        Assert.Equal(0xfUL, harness.Frontend.GetU64(VhostUserRequest.GetStatus));
        Assert.NotEqual(0UL, harness.Frontend.Ack(VhostUserRequest.SetStatus, FakeFrontend.U64(0x100)));
    }

    [Fact(Timeout = 30_000)]
    public async Task BackendRequestChannelAndErrorFdsAreAcceptedAndClosed()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetBackendReqFd, [], harness.NewEventFd().Fd));
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringErr, FakeFrontend.U64(1), harness.NewEventFd().Fd));
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringErr, FakeFrontend.U64(0x101)));
    }

    [Fact(Timeout = 30_000)]
    public async Task AFrontendConnectingWhileAnotherIsServedWaitsItsTurn()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        using FakeFrontend second = FakeFrontend.Connect(harness.SocketPath);
        second.Send(VhostUserRequest.GetQueueNum, []);

        // While the first frontend is served, the second gets nothing. The clock is the server's own progress: round
        // trips on the first connection (at least 20 and at least 200 ms), so a slow machine stretches the window.
        var window = System.Diagnostics.Stopwatch.StartNew();
        for (int trip = 0; trip < 20 || window.ElapsedMilliseconds < 200; trip++)
        {
            Assert.Equal(2UL, harness.Frontend.GetU64(VhostUserRequest.GetQueueNum));
            Assert.False(second.HasData(TimeSpan.Zero), $"the second frontend was answered while the first was served (after {trip} round trips)");
        }

        harness.Frontend.Dispose();
        Assert.Equal(2UL, second.ReceiveReplyTo(VhostUserRequest.GetQueueNum).U64);
        Assert.Equal(1, harness.Backend.ResetCount);
    }

    [Fact(Timeout = 30_000)]
    public async Task StoppingTheServerDisconnectsResetsAndRemovesTheSocket()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        harness.StartDevice(true, 0, 1);
        Assert.True(File.Exists(harness.SocketPath));

        Task stop = harness.Server.StopAsync();
        Assert.Same(stop, await Task.WhenAny(stop, Task.Delay(10_000, TestContext.Current.CancellationToken)));
        Assert.Equal(1, harness.Backend.ResetCount);
        Assert.Empty(harness.Backend.Started);
        Assert.False(File.Exists(harness.SocketPath));
        Assert.True(harness.Frontend.WaitClosed(TimeSpan.FromSeconds(5)));
        Assert.True(harness.Server.Completion.IsCompleted);
    }

    [Fact(Timeout = 30_000)]
    public async Task StopWithoutAFrontendCompletes()
    {
        await Task.Yield();
        string path = Harness.NewSocketPath();
        var server = new VhostUserServer(path, new FakeBackend());
        server.Start();
        Task stop = server.StopAsync();
        Assert.Same(stop, await Task.WhenAny(stop, Task.Delay(10_000, TestContext.Current.CancellationToken)));
        Assert.False(File.Exists(path));
        await server.DisposeAsync();
    }

    [Fact(Timeout = 30_000)]
    public async Task AStaleSocketFileIsReplaced()
    {
        await Task.Yield();
        string path = Harness.NewSocketPath();
        using (var dead = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            // The runtime unlinks the path it bound on dispose; a moved socket file survives, like one left by a killed process.
            string bound = path + ".bound";
            dead.Bind(new UnixDomainSocketEndPoint(bound));
            File.Move(bound, path);
        }

        Assert.True(File.Exists(path));
        await using var server = new VhostUserServer(path, new FakeBackend());
        server.Start();
        using FakeFrontend frontend = FakeFrontend.Connect(path);
        Assert.Equal(2UL, frontend.GetU64(VhostUserRequest.GetQueueNum));
    }

    [Fact(Timeout = 30_000)]
    public async Task APathServedByALiveListenerIsRefused()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        await using var intruder = new VhostUserServer(harness.SocketPath, new FakeBackend());
        IOException error = Assert.Throws<IOException>(intruder.Start);
        Assert.Contains("in use", error.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(harness.SocketPath));
    }

    [Fact(Timeout = 30_000)]
    public async Task StoppingLeavesASocketFileThatIsNoLongerOursAlone()
    {
        await Task.Yield();
        string path = Harness.NewSocketPath();
        var first = new VhostUserServer(path, new FakeBackend());
        first.Start();
        File.Move(path, path + ".moved"); // the path is taken away from the first server...
        await using var second = new VhostUserServer(path, new FakeBackend());
        second.Start(); // ...and a second server takes it over.

        await first.DisposeAsync();
        Assert.True(File.Exists(path), "the first server removed the second server's socket");
        using FakeFrontend frontend = FakeFrontend.Connect(path);
        Assert.Equal(2UL, frontend.GetU64(VhostUserRequest.GetQueueNum));
        File.Delete(path + ".moved");
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, $".vu-{Environment.ProcessId:x}-*"));
    }

    [Fact(Timeout = 30_000)]
    public async Task APathThatIsNotASocketIsRefusedAndLeftAlone()
    {
        await Task.Yield();
        string path = Path.Combine(Path.GetTempPath(), $"vu-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(path, "precious", TestContext.Current.CancellationToken);
        try
        {
            await using var server = new VhostUserServer(path, new FakeBackend());
            Assert.Throws<IOException>(server.Start);
            Assert.Equal("precious", await File.ReadAllTextAsync(path, TestContext.Current.CancellationToken));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void InvalidBackendsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => new VhostUserServer(Harness.NewSocketPath(), new FakeBackend(queueCount: 0)));
        Assert.Throws<ArgumentException>(() => new VhostUserServer(Harness.NewSocketPath(), new FakeBackend(queueCount: 257)));
        Assert.Throws<ArgumentException>(() => new VhostUserServer(Harness.NewSocketPath(), new FakeBackend(maxQueueSize: 100)));
        Assert.Throws<ArgumentException>(() => new VhostUserServer(Harness.NewSocketPath(), new FakeBackend(maxQueueSize: 0)));
    }
}
