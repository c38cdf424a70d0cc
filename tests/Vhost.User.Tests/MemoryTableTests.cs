using Virtio.Memory;

namespace Vhost.User.Tests;

public sealed class MemoryTableTests
{
    [Fact(Timeout = 30_000)]
    public async Task SetMemTableMapsTheFileSoTheBackendSeesTheFrontendsBytes()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        byte[] pattern = [0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4];
        RandomAccess.Write(harness.Ram, pattern, (long)(Harness.MmapOffset + 0x1234));
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetMemTable, FakeFrontend.MemTable(Harness.RamRegion), harness.RamFd));

        GuestMemory memory = harness.Backend.Memory!;
        byte[] seen = new byte[pattern.Length];
        Assert.Equal(MemoryError.None, memory.Read(new GuestAddress(Harness.GuestBase + 0x1234), seen));
        Assert.Equal(pattern, seen);

        // Shared mapping: what the backend writes, the frontend reads.
        Assert.Equal(MemoryError.None, memory.WriteU64(new GuestAddress(Harness.GuestBase + 0x100), 0x0123_4567_89ab_cdef));
        byte[] back = new byte[8];
        RandomAccess.Read(harness.Ram, back, (long)(Harness.MmapOffset + 0x100));
        Assert.Equal(0x0123_4567_89ab_cdefUL, BitConverter.ToUInt64(back));

        // Outside the region: refused as a value.
        Assert.Equal(MemoryError.InvalidAddress, memory.Read(new GuestAddress(Harness.GuestBase + Harness.RamSize), seen));
    }

    [Fact(Timeout = 30_000)]
    public async Task TheBackgroundPrefaultCoversTheRegionAndMapsExactlyThePagesTheGuestHas()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start(sealedRam: true);
        harness.Handshake();
        int pageSize = Environment.SystemPageSize;
        int pages = (int)(Harness.RamSize / (ulong)pageSize);
        int written = 0;
        for (int page = 0; page < pages; page += 3)
        {
            RandomAccess.Write(harness.Ram, [0x5a], (long)Harness.MmapOffset + ((long)page * pageSize));
            written++;
        }

        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetMemTable, FakeFrontend.MemTable(Harness.RamRegion), harness.RamFd));

        Harness.WaitUntil(() => harness.Logger.Contains("prefaulted"), "the prefault pass to report");
        (_, string line) = Assert.Single(harness.Logger.Lines, line => line.Message.Contains("prefaulted", StringComparison.Ordinal));
        Assert.Contains($"Completed: {written} of {pages} pages scanned were resident", line, StringComparison.Ordinal);

        // The guest's memory did not grow: a second table over the same file finds the same resident pages.
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetMemTable, FakeFrontend.MemTable(Harness.RamRegion), harness.RamFd));
        Harness.WaitUntil(() => harness.Logger.Lines.Count(line => line.Message.Contains("prefaulted", StringComparison.Ordinal)) == 2, "the second pass to report");
        Assert.All(
            harness.Logger.Lines.Where(line => line.Message.Contains("prefaulted", StringComparison.Ordinal)),
            line => Assert.Contains($"Completed: {written} of {pages} pages", line.Message, StringComparison.Ordinal));
    }

    [Fact(Timeout = 30_000)]
    public async Task AnUnsealedRegionIsMappedWithOneWarningPerConnection()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetMemTable, FakeFrontend.MemTable(Harness.RamRegion), harness.RamFd));
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetMemTable, FakeFrontend.MemTable(Harness.RamRegion), harness.RamFd));
        Assert.NotNull(harness.Backend.Memory);
        Assert.Single(harness.Logger.Lines, line => line.Level == Microsoft.Extensions.Logging.LogLevel.Warning && line.Message.Contains("not sealed against shrinking", StringComparison.Ordinal));
    }

    [Fact(Timeout = 30_000)]
    public async Task ARegionSealedAgainstShrinkingMapsWithoutWarning()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start(sealedRam: true);
        harness.Handshake();
        Assert.True(MemoryTable.IsSealedAgainstShrinking(harness.RamFd));
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetMemTable, FakeFrontend.MemTable(Harness.RamRegion), harness.RamFd));
        Assert.NotNull(harness.Backend.Memory);
        Assert.False(harness.Logger.Contains("not sealed"), harness.Logger.Dump());
    }

    [Fact(Timeout = 30_000)]
    public async Task VringAddressesAreTranslatedThroughTheRegionHoldingThem()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        var low = new RegionDescriptor(0, 0x8_0000, 0x7000_0000_0000, 0);
        var high = new RegionDescriptor(0x1_0000_0000, 0x8_0000, 0x7100_0000_0000, 0x8_0000);
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetMemTable, FakeFrontend.MemTable(low, high), harness.RamFd, harness.RamFd));
        Assert.Equal(2, harness.Backend.Memory!.Regions.Count);

        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringNum, FakeFrontend.State(0, 16)));
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringAddr, FakeFrontend.Address(0, 0x7100_0000_1000, 0x7000_0000_2000, 0x7100_0000_3000)));
        SafeFileDescriptor kick = harness.NewEventFd();
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringKick, FakeFrontend.U64(0), kick.Fd));

        VringConfig config = harness.Backend.Started[0].Config;
        Assert.Equal(new GuestAddress(0x1_0000_1000), config.DescriptorTable);
        Assert.Equal(new GuestAddress(0x2000), config.UsedRing);
        Assert.Equal(new GuestAddress(0x1_0000_3000), config.AvailableRing);
    }

    [Fact(Timeout = 30_000)]
    public async Task ANewTableReplacesTheOldWhichStaysMappedWhileLeased()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        RandomAccess.Write(harness.Ram, [42], (long)Harness.MmapOffset);
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetMemTable, FakeFrontend.MemTable(Harness.RamRegion), harness.RamFd));
        GuestMemory old = harness.Backend.Memory!;
        Assert.True(old.TryAcquire()); // a queue still working on the old table

        var moved = new RegionDescriptor(0x4000_0000, Harness.RamSize, Harness.UserBase, Harness.MmapOffset);
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetMemTable, FakeFrontend.MemTable(moved), harness.RamFd));
        GuestMemory current = harness.Backend.Memory!;
        Assert.NotSame(old, current);
        Assert.Equal(new GuestAddress(0x4000_0000), current.Regions[0].Start);

        Assert.Equal(MemoryError.None, old.ReadU16(new GuestAddress(Harness.GuestBase), out ushort value));
        Assert.Equal(42, value & 0xff);
        old.Release();
        Assert.True(old.IsDisposed);
        Assert.False(current.IsDisposed);
    }

    public static TheoryData<string> BadTables => ["file too small", "no regions", "nine regions", "fd count", "gpa overlap", "user overlap", "empty region", "not a file", "size mismatch", "offset overflow"];

    [Theory(Timeout = 30_000)]
    [MemberData(nameof(BadTables))]
    public async Task BadMemoryTablesAreRefusedAndTheOldTableStays(string which)
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetMemTable, FakeFrontend.MemTable(Harness.RamRegion), harness.RamFd));
        GuestMemory before = harness.Backend.Memory!;
        int fd = harness.RamFd;
        RegionDescriptor ram = Harness.RamRegion;
        (byte[] payload, int[] fds) = which switch
        {
            "file too small" => (FakeFrontend.MemTable(ram with { Size = Harness.RamSize * 2 }), new[] { fd }),
            "no regions" => (FakeFrontend.MemTable(), Array.Empty<int>()),
            "nine regions" => (FakeFrontend.MemTable(Enumerable.Range(0, 9).Select(i => new RegionDescriptor((ulong)i << 20, 0x1000, (ulong)i << 30, 0)).ToArray()), Enumerable.Repeat(fd, 8).ToArray()),
            "fd count" => (FakeFrontend.MemTable(ram), new[] { fd, fd }),
            "gpa overlap" => (FakeFrontend.MemTable(ram with { Size = 0x1000 }, ram with { Size = 0x1000, UserAddress = 0x10 }), new[] { fd, fd }),
            "user overlap" => (FakeFrontend.MemTable(ram with { Size = 0x1000 }, ram with { Size = 0x1000, GuestAddress = 0x9000_0000 }), new[] { fd, fd }),
            "empty region" => (FakeFrontend.MemTable(ram with { Size = 0 }), new[] { fd }),
            "not a file" => (FakeFrontend.MemTable(ram with { MmapOffset = 0 }), new[] { harness.NewEventFd().Fd }),
            "size mismatch" => (FakeFrontend.MemTable(ram).Concat(new byte[8]).ToArray(), new[] { fd }),
            "offset overflow" => (FakeFrontend.MemTable(ram with { MmapOffset = ulong.MaxValue - 0x10 }), new[] { fd }),
            _ => throw new ArgumentOutOfRangeException(nameof(which)),
        };

        Assert.NotEqual(0UL, harness.Frontend.Ack(VhostUserRequest.SetMemTable, payload, fds));
        Assert.True(harness.Logger.Contains("SET_MEM_TABLE refused"), harness.Logger.Dump());
        Assert.Same(before, harness.Backend.Memory);
        Assert.False(before.IsDisposed);
        Assert.Equal(2UL, harness.Frontend.GetU64(VhostUserRequest.GetQueueNum));
    }

    [Fact(Timeout = 30_000)]
    public async Task AddAndRemoveMemoryRegions()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        var first = new RegionDescriptor(0, 0x4_0000, 0x7000_0000_0000, 0);
        var second = new RegionDescriptor(0x10_0000, 0x4_0000, 0x7000_0010_0000, 0x4_0000);
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.AddMemReg, FakeFrontend.SingleRegion(first), harness.RamFd));
        Assert.Single(harness.Backend.Memory!.Regions);
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.AddMemReg, FakeFrontend.SingleRegion(second), harness.RamFd));
        Assert.Equal(2, harness.Backend.Memory!.Regions.Count);

        // Overlapping and unknown regions are refused.
        Assert.NotEqual(0UL, harness.Frontend.Ack(VhostUserRequest.AddMemReg, FakeFrontend.SingleRegion(first with { UserAddress = 0x7200_0000_0000 }), harness.RamFd));
        Assert.NotEqual(0UL, harness.Frontend.Ack(VhostUserRequest.RemMemReg, FakeFrontend.SingleRegion(first with { Size = 0x1000 })));
        Assert.NotEqual(0UL, harness.Frontend.Ack(VhostUserRequest.AddMemReg, FakeFrontend.SingleRegion(second)));

        // The mmap offset is ignored on removal; one stray descriptor is tolerated (and closed).
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.RemMemReg, FakeFrontend.SingleRegion(first with { MmapOffset = 0x999 })));
        Assert.Equal(new GuestAddress(0x10_0000), Assert.Single(harness.Backend.Memory!.Regions).Start);
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.RemMemReg, FakeFrontend.SingleRegion(second), harness.NewEventFd().Fd));
        Assert.Null(harness.Backend.Memory);
        Assert.Contains("SetMemory null", harness.Backend.Calls);
    }

    [Fact(Timeout = 30_000)]
    public async Task MemSlotRequestsNeedTheProtocolFeature()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake(VhostUserProtocolFeatures.ReplyAck | VhostUserProtocolFeatures.Config);
        Assert.NotEqual(0UL, harness.Frontend.Ack(VhostUserRequest.AddMemReg, FakeFrontend.SingleRegion(Harness.RamRegion), harness.RamFd));
        harness.Frontend.Send(VhostUserRequest.GetMaxMemSlots, []);
        Assert.Empty(harness.Frontend.ReceiveReplyTo(VhostUserRequest.GetMaxMemSlots).Payload);
        Assert.Null(harness.Backend.Memory);
    }

    [Fact(Timeout = 30_000)]
    public async Task RingAddressesOutsideTheTableOrMisalignedAreRefused()
    {
        await Task.Yield();
        await using Harness harness = Harness.Start();
        harness.Handshake();
        var (descriptors, available, used) = Harness.RingUser(0);

        // No table yet.
        Assert.NotEqual(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringAddr, FakeFrontend.Address(0, descriptors, used, available)));
        Assert.True(harness.Logger.Contains("is not in the memory table"), harness.Logger.Dump());

        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetMemTable, FakeFrontend.MemTable(Harness.RamRegion), harness.RamFd));
        Assert.NotEqual(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringAddr, FakeFrontend.Address(0, 0x1000, used, available)));
        Assert.NotEqual(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringAddr, FakeFrontend.Address(0, descriptors + 8, used, available)));
        Assert.NotEqual(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringAddr, FakeFrontend.Address(0, descriptors, used + 2, available)));
        Assert.NotEqual(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringAddr, FakeFrontend.Address(0, descriptors, used, available + 1)));
        Assert.NotEqual(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringAddr, FakeFrontend.Address(0, descriptors, used, available, flags: 1)));
        Assert.True(harness.Logger.Contains("not 16-byte aligned"), harness.Logger.Dump());

        // Starts inside the table but the ring runs past its end: refused at start.
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringNum, FakeFrontend.State(0, 256)));
        ulong last = Harness.UserBase + Harness.RamSize - 16;
        Assert.Equal(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringAddr, FakeFrontend.Address(0, last, used, available)));
        SafeFileDescriptor kick = harness.NewEventFd();
        Assert.NotEqual(0UL, harness.Frontend.Ack(VhostUserRequest.SetVringKick, FakeFrontend.U64(0), kick.Fd));
        Assert.True(harness.Logger.Contains("is not inside guest memory"), harness.Logger.Dump());
        Assert.Empty(harness.Backend.Started);
    }
}
