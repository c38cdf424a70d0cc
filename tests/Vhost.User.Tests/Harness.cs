using Microsoft.Win32.SafeHandles;
using Virtio.Memory;

namespace Vhost.User.Tests;

/// <summary>
/// A running <see cref="VhostUserServer"/> on a fresh socket path with a <see cref="FakeBackend"/>, a
/// connected <see cref="FakeFrontend"/>, a memfd standing for guest RAM, and the QEMU start sequence.
/// </summary>
internal sealed class Harness : IAsyncDisposable
{
    /// <summary>Guest physical address of the RAM region.</summary>
    public const ulong GuestBase = 0x10_0000;

    /// <summary>Where the frontend "mapped" the RAM region in its own address space.</summary>
    public const ulong UserBase = 0x7f12_3400_0000;

    /// <summary>Offset of the region inside the memfd.</summary>
    public const ulong MmapOffset = 0x2000;

    public const ulong RamSize = 0x10_0000;

    public const VhostUserProtocolFeatures AllProtocolFeatures =
        VhostUserProtocolFeatures.Mq | VhostUserProtocolFeatures.Config | VhostUserProtocolFeatures.ReplyAck
        | VhostUserProtocolFeatures.ConfigureMemSlots | VhostUserProtocolFeatures.ResetDevice;

    private readonly List<IDisposable> _owned = [];

    private Harness(FakeBackend backend, string path, CapturingLogger logger, VhostUserServer server, bool sealedRam)
    {
        Backend = backend;
        SocketPath = path;
        Logger = logger;
        Server = server;
        Ram = sealedRam
            ? SharedMemoryFile.CreateSealed("vhost-user-test-ram", (long)(MmapOffset + RamSize))
            : SharedMemoryFile.Create("vhost-user-test-ram", (long)(MmapOffset + RamSize));
        Frontend = FakeFrontend.Connect(path);
    }

    public FakeBackend Backend { get; }

    public string SocketPath { get; }

    public CapturingLogger Logger { get; }

    public VhostUserServer Server { get; }

    public SafeFileHandle Ram { get; }

    public FakeFrontend Frontend { get; private set; }

    public int RamFd => (int)Ram.DangerousGetHandle();

    public static string NewSocketPath() => Path.Combine(Path.GetTempPath(), $"vu-{Guid.NewGuid():N}.sock");

    public static Harness Start(FakeBackend? backend = null, bool sealedRam = false)
    {
        backend ??= new FakeBackend();
        string path = NewSocketPath();
        var logger = new CapturingLogger();
        var server = new VhostUserServer(path, backend, logger);
        server.Start();
        return new Harness(backend, path, logger, server, sealedRam);
    }

    /// <summary>Ring layout of queue <paramref name="index"/> in frontend virtual addresses (inside RAM).</summary>
    public static (ulong Descriptors, ulong Available, ulong Used) RingUser(uint index)
    {
        ulong base_ = UserBase + 0x1_0000 + (index * 0x1_0000UL);
        return (base_, base_ + 0x4000, base_ + 0x8000);
    }

    /// <summary>The guest physical address matching a frontend virtual address inside RAM.</summary>
    public static ulong ToGuest(ulong user) => GuestBase + (user - UserBase);

    public static RegionDescriptor RamRegion => new(GuestBase, RamSize, UserBase, MmapOffset);

    /// <summary>Polls <paramref name="condition"/> until it holds; fails after a generous deadline (the test machine is loaded).</summary>
    public static void WaitUntil(Func<bool> condition, string what, int timeoutMs = 30_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            Thread.Sleep(5); // a poll interval, bounded by the deadline above
        }
    }

    /// <summary>
    /// Asserts that a kick written to <paramref name="kickFd"/> is still unread, and drains it: nobody (no kick
    /// thread) holds the eventfd any more, so the signal can never reach the backend. No waiting involved.
    /// </summary>
    public static void AssertKickUnread(SafeFileDescriptor kickFd) =>
        Assert.True(WaitSignalled(kickFd, timeoutMs: 0), "the kick was consumed: a kick thread still reads this eventfd");

    /// <summary>
    /// Runs <paramref name="check"/> repeatedly during a measuring window (an absence over time: the verdict is what
    /// <paramref name="check"/> asserts, never the wall time).
    /// </summary>
    public static void HoldFor(TimeSpan window, Action check)
    {
        var windowDeadline = DateTime.UtcNow + window;
        while (true)
        {
            check();
            if (DateTime.UtcNow >= windowDeadline)
            {
                return;
            }

            Thread.Sleep(10); // a poll interval within the window, bounded by its deadline (windowDeadline)
        }
    }

    /// <summary>Waits until <paramref name="value"/> stays unchanged for <paramref name="quietFor"/>, failing after a generous deadline; returns it.</summary>
    public static long WaitQuiet(Func<long> value, TimeSpan quietFor, string what, int timeoutMs = 30_000)
    {
        var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
        long last = value();
        var quietSince = DateTime.UtcNow;
        while (DateTime.UtcNow - quietSince < quietFor)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{what} kept changing for {timeoutMs} ms");
            Thread.Sleep(10); // a poll interval, bounded by the deadline above
            long now = value();
            if (now != last)
            {
                last = now;
                quietSince = DateTime.UtcNow;
            }
        }

        return last;
    }

    /// <summary>Whether the eventfd's counter is non-zero within <paramref name="timeoutMs"/>; drains it.</summary>
    public static bool WaitSignalled(SafeFileDescriptor eventFd, int timeoutMs = 10_000)
    {
        if (!Descriptors.WaitReadable(eventFd.Fd, timeoutMs))
        {
            return false;
        }

        return Descriptors.Drain(eventFd.Fd, out ulong value) == 8 && value > 0;
    }

    public SafeFileDescriptor NewEventFd()
    {
        SafeFileDescriptor fd = Descriptors.Create(nonBlocking: true);
        _owned.Add(fd);
        return fd;
    }

    public T Own<T>(T disposable)
        where T : IDisposable
    {
        _owned.Add(disposable);
        return disposable;
    }

    /// <summary>The handshake QEMU sends when it connects.</summary>
    public void Handshake(VhostUserProtocolFeatures protocol = AllProtocolFeatures)
    {
        ulong features = Frontend.GetU64(VhostUserRequest.GetFeatures);
        Assert.Equal(Backend.Features | VhostUserConnection.ProtocolFeaturesBit, features);
        ulong offered = Frontend.GetU64(VhostUserRequest.GetProtocolFeatures);
        Assert.Equal((ulong)(Backend.ProtocolFeatures & VhostUserConnection.SupportedProtocolFeatures), offered);
        Frontend.SetU64(VhostUserRequest.SetProtocolFeatures, (ulong)protocol);
        Frontend.Send(VhostUserRequest.SetOwner, []);
        Frontend.Send(VhostUserRequest.GetConfig, FakeFrontend.ConfigRequest(0, 8));
        Reply config = Frontend.ReceiveReplyTo(VhostUserRequest.GetConfig);
        Assert.Equal(FakeFrontend.ConfigRequest(0, 8, 0, Backend.Config), config.Payload);
    }

    /// <summary>What QEMU sends when the guest driver starts: features, memory, then every ring.</summary>
    public (SafeFileDescriptor Kick, SafeFileDescriptor Call)[] StartDevice(bool protocolFeatures = true, params uint[] rings)
    {
        if (rings.Length == 0)
        {
            rings = [0, 1];
        }

        ulong features = FakeBackend.VersionOne | FakeBackend.Seqpacket | (protocolFeatures ? VhostUserConnection.ProtocolFeaturesBit : 0);
        Frontend.SetU64(VhostUserRequest.SetFeatures, features);
        Assert.Equal(0UL, Frontend.Ack(VhostUserRequest.SetMemTable, FakeFrontend.MemTable(RamRegion), RamFd));
        var result = new (SafeFileDescriptor, SafeFileDescriptor)[rings.Length];
        for (int i = 0; i < rings.Length; i++)
        {
            result[i] = StartRing(rings[i]);
        }

        if (protocolFeatures)
        {
            foreach (uint ring in rings)
            {
                Assert.Equal(0UL, Frontend.Ack(VhostUserRequest.SetVringEnable, FakeFrontend.State(ring, 1)));
            }
        }

        return result;
    }

    public (SafeFileDescriptor Kick, SafeFileDescriptor Call) StartRing(uint index, ushort size = 256, ushort nextAvailable = 0)
    {
        var (descriptors, available, used) = RingUser(index);
        Frontend.Send(VhostUserRequest.SetVringNum, FakeFrontend.State(index, size));
        Frontend.Send(VhostUserRequest.SetVringBase, FakeFrontend.State(index, nextAvailable));
        Frontend.Send(VhostUserRequest.SetVringAddr, FakeFrontend.Address(index, descriptors, used, available));
        SafeFileDescriptor kick = NewEventFd();
        SafeFileDescriptor call = NewEventFd();
        Frontend.SetU64(VhostUserRequest.SetVringKick, index, kick.Fd);
        Frontend.SetU64(VhostUserRequest.SetVringCall, index, call.Fd);

        // A round trip makes sure everything before it was handled.
        Frontend.GetU64(VhostUserRequest.GetFeatures);
        return (kick, call);
    }

    /// <summary>Replaces the frontend with a fresh connection (the previous one is closed first).</summary>
    public void Reconnect()
    {
        Frontend.Dispose();
        Frontend = FakeFrontend.Connect(SocketPath);
    }

    public async ValueTask DisposeAsync()
    {
        Frontend.Dispose();
        await Server.DisposeAsync();
        foreach (IDisposable owned in _owned)
        {
            owned.Dispose();
        }

        Ram.Dispose();
    }
}
