using Virtio.Memory;

namespace Vhost.User.Tests;

public sealed class StartSequenceTests
{
    [Fact(Timeout = 30_000)]
    public async Task QemuStartSequenceStartsBothRingsAndStopReturnsTheBase()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        var rings = harness.StartDevice(protocolFeatures: true, 0, 1);

        FakeBackend backend = harness.Backend;
        Assert.Equal(FakeBackend.VersionOne | FakeBackend.Seqpacket, backend.AckedFeatures);
        Assert.NotNull(backend.Memory);
        for (int i = 0; i < 2; i++)
        {
            var (config, _) = backend.Started[i];
            var (descriptors, available, used) = Harness.RingUser((uint)i);
            Assert.Equal(new VringConfig(256, new GuestAddress(Harness.ToGuest(descriptors)), new GuestAddress(Harness.ToGuest(available)), new GuestAddress(Harness.ToGuest(used)), 0), config);
            Assert.True(backend.Enabled[i]);
        }

        // One kick is delivered at start (the driver may have queued buffers before).
        Harness.WaitUntil(() => backend.Kicks(0) >= 1 && backend.Kicks(1) >= 1, "initial kicks");
        int before = backend.Kicks(1);
        Assert.Equal(0, Descriptors.Signal(rings[1].Kick.Fd));
        Harness.WaitUntil(() => backend.Kicks(1) > before, "kick of ring 1");
        Assert.Contains("vu-kick-1", backend.KickThreadNames);

        Assert.True(backend.Started[0].Call.Notify());
        Assert.True(Harness.WaitSignalled(rings[0].Call), "call eventfd of ring 0 was not written");

        harness.Frontend.Send(VhostUserRequest.GetVringBase, FakeFrontend.State(1, 0));
        Reply reply = harness.Frontend.ReceiveReplyTo(VhostUserRequest.GetVringBase);
        Assert.Equal(FakeFrontend.State(1, backend.Progress), reply.Payload);
        Assert.False(backend.Started.ContainsKey(1));
        Assert.True(backend.Started.ContainsKey(0));

        // Stopped: kicks no longer reach the backend (GET_VRING_BASE joined ring 1's kick thread before replying), so
        // the kick stays unread in the eventfd; ring 0 still runs.
        int stopped = backend.Kicks(1);
        Descriptors.Signal(rings[1].Kick.Fd);
        Harness.AssertKickUnread(rings[1].Kick);
        Assert.Equal(stopped, backend.Kicks(1));
        int ring0 = backend.Kicks(0);
        Descriptors.Signal(rings[0].Kick.Fd);
        Harness.WaitUntil(() => backend.Kicks(0) > ring0, "kick of the running ring 0");
        Assert.Equal(stopped, backend.Kicks(1));
    }

    [Fact(Timeout = 30_000)]
    public async Task WithProtocolFeaturesRingsStartDisabledAndFollowSetVringEnable()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        harness.Frontend.SetU64(VhostUserRequest.SetFeatures, FakeBackend.VersionOne | VhostUserConnection.ProtocolFeaturesBit);
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetMemTable, FakeFrontend.MemTable(Harness.RamRegion), harness.RamFd));
        harness.StartRing(0);

        Assert.False(harness.Backend.Enabled[0]);
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringEnable, FakeFrontend.State(0, 1)));
        Assert.True(harness.Backend.Enabled[0]);
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringEnable, FakeFrontend.State(0, 0)));
        Assert.False(harness.Backend.Enabled[0]);
        Assert.NotEqual(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringEnable, FakeFrontend.State(0, 2)));
    }

    [Fact(Timeout = 30_000)]
    public async Task EnableBeforeKickTakesEffectAtStart()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        harness.Frontend.SetU64(VhostUserRequest.SetFeatures, FakeBackend.VersionOne | VhostUserConnection.ProtocolFeaturesBit);
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetMemTable, FakeFrontend.MemTable(Harness.RamRegion), harness.RamFd));
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringEnable, FakeFrontend.State(0, 1)));
        harness.StartRing(0);
        Assert.True(harness.Backend.Enabled[0]);
    }

    [Fact(Timeout = 30_000)]
    public async Task WithoutProtocolFeaturesRingsAreEnabledWhenStarted()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        Assert.Equal(harness.Backend.Features | VhostUserConnection.ProtocolFeaturesBit, harness.Frontend.GetU64(VhostUserRequest.GetFeatures));
        harness.Frontend.Send(VhostUserRequest.SetOwner, []);
        harness.Frontend.SetU64(VhostUserRequest.SetFeatures, FakeBackend.VersionOne);
        harness.Frontend.Send(VhostUserRequest.SetMemTable, FakeFrontend.MemTable(Harness.RamRegion), false, harness.RamFd);
        harness.StartRing(0, size: 64, nextAvailable: 7);

        Assert.True(harness.Backend.Enabled[0]);
        Assert.Equal((ushort)64, harness.Backend.Started[0].Config.Size);
        Assert.Equal((ushort)7, harness.Backend.Started[0].Config.NextAvailableIndex);

        // No REPLY_ACK negotiated: NEED_REPLY is ignored for requests without a reply of their own.
        harness.Frontend.Send(VhostUserRequest.SetOwner, [], needReply: true);
        harness.Frontend.AssertNoReplyPending();
    }

    [Fact(Timeout = 30_000)]
    public async Task ConfigQueueNumAndMaxMemSlotsAreAnswered()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        Assert.Equal(2UL, harness.Frontend.GetU64(VhostUserRequest.GetQueueNum));
        Assert.Equal((ulong)VhostUserConnection.MaxMemorySlots, harness.Frontend.GetU64(VhostUserRequest.GetMaxMemSlots));

        harness.Frontend.Send(VhostUserRequest.GetConfig, FakeFrontend.ConfigRequest(4, 4));
        Assert.Equal(FakeFrontend.ConfigRequest(4, 4, 0, harness.Backend.Config.AsSpan(4, 4)), harness.Frontend.ReceiveReplyTo(VhostUserRequest.GetConfig).Payload);

        // Outside the configuration space: a reply without payload is the protocol's error.
        harness.Frontend.Send(VhostUserRequest.GetConfig, FakeFrontend.ConfigRequest(6, 4));
        Assert.Empty(harness.Frontend.ReceiveReplyTo(VhostUserRequest.GetConfig).Payload);
        Assert.True(harness.Logger.Contains("GET_CONFIG refused"), harness.Logger.Dump());

        // The fake's configuration space is read-only.
        Assert.NotEqual(0UL, harness.Frontend.Ack(VhostUserRequest.SetConfig, FakeFrontend.ConfigRequest(0, 8, 0, new byte[8])));
        Assert.Contains("WriteConfig 0 8 False", harness.Backend.Calls);
    }

    [Fact(Timeout = 30_000)]
    public async Task ReplyAckReportsSuccessAndFailure()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetOwner, []));
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringNum, FakeFrontend.State(1, 128)));
        Assert.NotEqual(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringNum, FakeFrontend.State(1, 100)));

        // Requests with a reply of their own get exactly that reply, no extra status.
        harness.Frontend.Send(VhostUserRequest.GetFeatures, [], needReply: true);
        Assert.Equal(8, harness.Frontend.ReceiveReplyTo(VhostUserRequest.GetFeatures).Payload.Length);
        harness.Frontend.AssertNoReplyPending();
    }

    [Fact(Timeout = 30_000)]
    public async Task GetVringBaseOfAStoppedRingReturnsTheStoredBase()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        harness.Frontend.Send(VhostUserRequest.SetVringBase, FakeFrontend.State(1, 0x1234));
        harness.Frontend.Send(VhostUserRequest.GetVringBase, FakeFrontend.State(1, 0));
        Assert.Equal(FakeFrontend.State(1, 0x1234), harness.Frontend.ReceiveReplyTo(VhostUserRequest.GetVringBase).Payload);
        Assert.DoesNotContain(harness.Backend.Calls, call => call.StartsWith("StopQueue", StringComparison.Ordinal));
    }

    [Fact(Timeout = 30_000)]
    public async Task RestartedRingResumesAtTheBaseTheStopReported()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        harness.StartDevice(true, 0);
        harness.Frontend.Send(VhostUserRequest.GetVringBase, FakeFrontend.State(0, 0));
        Assert.Equal(FakeFrontend.State(0, 5), harness.Frontend.ReceiveReplyTo(VhostUserRequest.GetVringBase).Payload);

        // Restart without SET_VRING_BASE: continues where it stopped; disabled again until enabled.
        SafeFileDescriptor kick = harness.NewEventFd();
        harness.Frontend.SetU64(VhostUserRequest.SetVringKick, 0, kick.Fd);
        harness.Frontend.GetU64(VhostUserRequest.GetFeatures);
        Assert.Equal((ushort)5, harness.Backend.Started[0].Config.NextAvailableIndex);
        Assert.False(harness.Backend.Enabled[0]);
    }

    [Fact(Timeout = 30_000)]
    public async Task CallEventFdCanBeReplacedWhileTheRingRuns()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        var rings = harness.StartDevice(true, 0);
        IVringNotifier notifier = harness.Backend.Started[0].Call;

        // The harness sends SET_VRING_CALL after SET_VRING_KICK: the ring had started, so that call eventfd was
        // signalled once already.
        Assert.True(Harness.WaitSignalled(rings[0].Call, timeoutMs: 0), "setting the call eventfd of a started ring did not signal it");
        SafeFileDescriptor second = harness.NewEventFd();
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringCall, FakeFrontend.U64(0), second.Fd));

        // The swap itself signals the new descriptor once (done before the reply): a notification lost to the swap
        // is made good.
        Assert.True(Harness.WaitSignalled(second, timeoutMs: 0), "replacing the call eventfd of a running ring did not signal the new one");
        Assert.True(notifier.Notify());
        Assert.True(Harness.WaitSignalled(second));
        Assert.False(Harness.WaitSignalled(rings[0].Call, timeoutMs: 0)); // Notify writes synchronously: nothing to wait for

        // "No fd": notifications are dropped, not an error.
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringCall, FakeFrontend.U64(0x100)));
        Assert.False(notifier.Notify());
    }

    [Fact(Timeout = 30_000)]
    public async Task KickEventFdCanBeReplacedWhileTheRingRuns()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        var rings = harness.StartDevice(true, 0);
        Harness.WaitUntil(() => harness.Backend.Kicks(0) >= 1, "initial kick");

        SafeFileDescriptor second = harness.NewEventFd();
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringKick, FakeFrontend.U64(0), second.Fd));
        Harness.WaitUntil(() => harness.Backend.Kicks(0) >= 2, "kick after replacement");
        int before = harness.Backend.Kicks(0);
        Descriptors.Signal(second.Fd);
        Harness.WaitUntil(() => harness.Backend.Kicks(0) > before, "kick on the new eventfd");
        Assert.Single(harness.Backend.Calls, call => call == "StartQueue 0");
        _ = rings;
    }

    [Fact(Timeout = 30_000)]
    public async Task BackendExceptionBecomesAnErrorReply()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start(new FakeBackend { ThrowOnStart = true });
        harness.Handshake();
        harness.Frontend.SetU64(VhostUserRequest.SetFeatures, FakeBackend.VersionOne | VhostUserConnection.ProtocolFeaturesBit);
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetMemTable, FakeFrontend.MemTable(Harness.RamRegion), harness.RamFd));
        var (descriptors, available, used) = Harness.RingUser(0);
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringNum, FakeFrontend.State(0, 8)));
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringAddr, FakeFrontend.Address(0, descriptors, used, available)));
        SafeFileDescriptor kick = harness.NewEventFd();
        Assert.NotEqual(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringKick, FakeFrontend.U64(0), kick.Fd));
        Assert.True(harness.Logger.Contains("start refused by the test backend"), harness.Logger.Dump());
        Assert.Equal(2UL, harness.Frontend.GetU64(VhostUserRequest.GetQueueNum));
    }
}
