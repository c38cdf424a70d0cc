using System.Runtime.InteropServices;

namespace Vhost.User.Tests;

/// <summary>
/// <see cref="IVhostUserBackend.TryTakeKick"/>: a backend that waits on a queue's kick eventfd itself gets the
/// descriptor and no kick thread runs for that queue; a backend that declines keeps today's kick thread.
/// </summary>
public sealed class KickHandoverTests
{
    [Fact(Timeout = 30_000)]
    public async Task BackendThatTakesTheKickSeesItBecomeReadableAndNoKickThreadRuns()
    {
        await Task.Yield();
        var backend = new FakeBackend { TakeKicks = true };
        await using Harness harness = Harness.Start(backend);
        harness.Handshake();
        var rings = harness.StartDevice(protocolFeatures: true, 0, 1);

        Assert.Equal(1, backend.KickOffers[0]);
        Assert.Equal(1, backend.KickOffers[1]);
        Assert.Equal(0, harness.Server.CurrentConnection!.KickWaiterCount);
        SafeHandle taken = backend.TakenKicks[0];
        int takenFd = (int)taken.DangerousGetHandle();
        Assert.False(Descriptors.WaitReadable(takenFd, 0), "the taken kick is readable before any kick");

        // The frontend kicks: the backend's descriptor becomes readable, and nobody else drained it.
        Assert.Equal(0, Descriptors.Signal(rings[0].Kick.Fd));
        Assert.True(Descriptors.WaitReadable(takenFd, 10_000), "the taken kick did not become readable");
        Assert.Equal(8, Descriptors.Drain(takenFd, out ulong value));
        Assert.Equal(1UL, value);
        Assert.Equal(0, backend.Kicks(0));
        Assert.Empty(backend.KickThreadNames);

        // The frontend replaces the kick of the running queue: offered again, the backend drops the old one.
        SafeFileDescriptor second = harness.NewEventFd();
        harness.Frontend.SetU64(VhostUserRequest.SetVringKick, 0, second.Fd);
        harness.Frontend.GetU64(VhostUserRequest.GetFeatures);
        Assert.Equal(2, backend.KickOffers[0]);
        Assert.True(taken.IsClosed);
        SafeHandle replacement = backend.TakenKicks[0];
        Assert.Equal(0, Descriptors.Signal(second.Fd));
        Assert.True(Descriptors.WaitReadable((int)replacement.DangerousGetHandle(), 10_000), "the replacement kick did not become readable");
        Assert.Equal(0, harness.Server.CurrentConnection!.KickWaiterCount);

        // GET_VRING_BASE stops the queue; the backend dropped the kick in StopQueue.
        harness.Frontend.Send(VhostUserRequest.GetVringBase, FakeFrontend.State(0, 0));
        harness.Frontend.ReceiveReplyTo(VhostUserRequest.GetVringBase);
        Assert.False(backend.TakenKicks.ContainsKey(0));
        Assert.True(replacement.IsClosed);
        Assert.True(backend.TakenKicks.ContainsKey(1));
        Assert.Equal(0, backend.Kicks(0) + backend.Kicks(1));
    }

    [Fact(Timeout = 30_000)]
    public async Task BackendThatDeclinesTheKickGetsKickCallsFromAKickThread()
    {
        await Task.Yield();
        var backend = new FakeBackend { TakeKicks = false };
        await using Harness harness = Harness.Start(backend);
        harness.Handshake();
        var rings = harness.StartDevice(protocolFeatures: true, 0);

        Assert.Equal(1, backend.KickOffers[0]);
        Assert.Empty(backend.TakenKicks);
        Assert.Equal(1, harness.Server.CurrentConnection!.KickWaiterCount);
        Harness.WaitUntil(() => backend.Kicks(0) >= 1, "the initial kick");
        int before = backend.Kicks(0);
        Assert.Equal(0, Descriptors.Signal(rings[0].Kick.Fd));
        Harness.WaitUntil(() => backend.Kicks(0) > before, "the kick of ring 0");
        Assert.Contains("vu-kick-0", backend.KickThreadNames);
    }
}
