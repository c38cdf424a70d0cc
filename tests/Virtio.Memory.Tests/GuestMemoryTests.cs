using System.Buffers.Binary;

namespace Virtio.Memory.Tests;

public sealed class GuestMemoryTests
{
    private static GuestMemory TwoAdjacentRegionsAndAHole()
    {
        // [0x0, 0x1000) [0x1000, 0x3000)   hole   [0x10000, 0x11000)
        using GuestRegion a = GuestRegion.CreateAnonymous(new GuestAddress(0x0), 0x1000);
        using GuestRegion b = GuestRegion.CreateAnonymous(new GuestAddress(0x1000), 0x2000);
        using GuestRegion c = GuestRegion.CreateAnonymous(new GuestAddress(0x10000), 0x1000);
        return GuestMemory.Create(c, a, b);
    }

    [Fact]
    public void Regions_are_sorted_and_overlap_is_refused()
    {
        using GuestMemory memory = TwoAdjacentRegionsAndAHole();
        Assert.Equal([0x0ul, 0x1000ul, 0x10000ul], memory.Regions.Select(r => r.Start.Value));

        using GuestRegion x = GuestRegion.CreateAnonymous(new GuestAddress(0x1000), 0x1000);
        using GuestRegion y = GuestRegion.CreateAnonymous(new GuestAddress(0x1fff), 0x10);
        ArgumentException error = Assert.Throws<ArgumentException>(() => GuestMemory.Create(x, y));
        Assert.Contains("overlap", error.Message);
        Assert.Throws<ArgumentException>(() => GuestMemory.Create());
    }

    [Fact]
    public void Region_creation_validates_size_and_overflow()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => GuestRegion.CreateAnonymous(new GuestAddress(0), 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => GuestRegion.CreateAnonymous(new GuestAddress(ulong.MaxValue), 2));
    }

    [Fact]
    public void Little_endian_values_round_trip_and_are_stored_little_endian()
    {
        using GuestMemory memory = GuestMemory.CreateAnonymous(new GuestAddress(0x4000), 0x1000);
        var at = new GuestAddress(0x4100);
        Assert.Equal(MemoryError.None, memory.WriteU64(at, 0x0102030405060708));
        Span<byte> raw = stackalloc byte[8];
        Assert.Equal(MemoryError.None, memory.Read(at, raw));
        Assert.Equal(0x0102030405060708ul, BinaryPrimitives.ReadUInt64LittleEndian(raw));
        Assert.Equal(0x08, raw[0]);

        Assert.Equal(MemoryError.None, memory.WriteU32(at, 0xdeadbeef));
        Assert.Equal(MemoryError.None, memory.ReadU32(at, out uint u32));
        Assert.Equal(0xdeadbeefu, u32);
        Assert.Equal(MemoryError.None, memory.WriteU16(at, 0xbeef));
        Assert.Equal(MemoryError.None, memory.ReadU16(at, out ushort u16));
        Assert.Equal(0xbeef, u16);
        Assert.Equal(MemoryError.None, memory.ReadU64(at, out ulong u64));
        Assert.Equal(0x01020304deadbeeful, u64);
    }

    [Fact]
    public void Accesses_outside_memory_are_typed_errors()
    {
        using GuestMemory memory = TwoAdjacentRegionsAndAHole();
        Span<byte> buffer = stackalloc byte[16];

        Assert.Equal(MemoryError.InvalidAddress, memory.Read(new GuestAddress(0x5000), buffer));
        Assert.Equal(MemoryError.InvalidAddress, memory.Write(new GuestAddress(0xffff_ffff_0000), buffer));
        // Starts inside the last byte of the adjacent pair, runs into the hole.
        Assert.Equal(MemoryError.RangeOutsideMemory, memory.Read(new GuestAddress(0x2ff8), buffer));
        // Starts inside the last region, runs past the end of memory.
        Assert.Equal(MemoryError.RangeOutsideMemory, memory.ReadU64(new GuestAddress(0x10ffc), out _));
        Assert.Equal(MemoryError.RangeOutsideMemory, memory.CheckRange(new GuestAddress(0x0), 0x3001));
        Assert.Equal(MemoryError.None, memory.CheckRange(new GuestAddress(0x0), 0x3000));
        Assert.Equal(MemoryError.None, memory.CheckRange(new GuestAddress(0x9999_9999), 0));
    }

    [Fact]
    public void Address_plus_length_overflow_is_detected()
    {
        using GuestRegion top = GuestRegion.CreateAnonymous(new GuestAddress(ulong.MaxValue - 0xfff), 0x1000);
        using GuestMemory memory = GuestMemory.Create(top);
        Assert.Equal(MemoryError.None, memory.CheckRange(new GuestAddress(ulong.MaxValue - 0xfff), 0x1000));
        Assert.Equal(MemoryError.None, memory.WriteU16(new GuestAddress(ulong.MaxValue - 1), 0x1234));
        Assert.Equal(MemoryError.AddressOverflow, memory.CheckRange(new GuestAddress(ulong.MaxValue - 0xf), 0x11));
        Assert.Equal(MemoryError.AddressOverflow, memory.CheckRange(new GuestAddress(ulong.MaxValue), ulong.MaxValue));
    }

    [Fact]
    public void Copies_cross_adjacent_regions_but_single_spans_do_not()
    {
        using GuestMemory memory = TwoAdjacentRegionsAndAHole();
        byte[] pattern = Enumerable.Range(0, 64).Select(i => (byte)(i * 7)).ToArray();
        var start = new GuestAddress(0x1000 - 20);

        Assert.Equal(MemoryError.None, memory.Write(start, pattern));
        byte[] back = new byte[64];
        Assert.Equal(MemoryError.None, memory.Read(start, back));
        Assert.Equal(pattern, back);

        Assert.Equal(MemoryError.CrossesRegions, memory.TryGetSpan(start, 64, out Span<byte> none));
        Assert.True(none.IsEmpty);
        Assert.Equal(MemoryError.None, memory.TryGetSpans(start, 64, out GuestSpanEnumerator spans));
        var lengths = new List<int>();
        var joined = new List<byte>();
        foreach (Span<byte> span in spans)
        {
            lengths.Add(span.Length);
            joined.AddRange(span.ToArray());
        }

        Assert.Equal([20, 44], lengths);
        Assert.Equal(pattern, joined);
    }

    [Fact]
    public void Atomic_index_access_requires_alignment_and_one_region()
    {
        using GuestMemory memory = TwoAdjacentRegionsAndAHole();
        Assert.Equal(MemoryError.None, memory.StoreU16Release(new GuestAddress(0x2000), 0xabcd));
        Assert.Equal(MemoryError.None, memory.LoadU16Acquire(new GuestAddress(0x2000), out ushort value));
        Assert.Equal(0xabcd, value);
        Assert.Equal(MemoryError.None, memory.ReadU16(new GuestAddress(0x2000), out ushort plain));
        Assert.Equal(0xabcd, plain);
        Assert.Equal(MemoryError.Misaligned, memory.LoadU16Acquire(new GuestAddress(0x2001), out _));
        Assert.Equal(MemoryError.Misaligned, memory.StoreU16Release(new GuestAddress(0x2001), 1));
        Assert.Equal(MemoryError.InvalidAddress, memory.LoadU16Acquire(new GuestAddress(0x8000), out _));
    }

    [Fact]
    public void Fill_writes_every_byte_of_the_range_only()
    {
        using GuestMemory memory = TwoAdjacentRegionsAndAHole();
        Assert.Equal(MemoryError.None, memory.Fill(new GuestAddress(0xff0), 0x20, 0xaa));
        byte[] back = new byte[0x30];
        Assert.Equal(MemoryError.None, memory.Read(new GuestAddress(0xfe8), back));
        Assert.All(back.AsSpan(0, 8).ToArray(), b => Assert.Equal(0, b));
        Assert.All(back.AsSpan(8, 0x20).ToArray(), b => Assert.Equal(0xaa, b));
        Assert.All(back.AsSpan(0x28).ToArray(), b => Assert.Equal(0, b));
        Assert.Equal(MemoryError.RangeOutsideMemory, memory.Fill(new GuestAddress(0x2ff0), 0x20, 1));
    }

    [Fact]
    public void Access_after_dispose_fails_cleanly_and_leases_delay_unmapping()
    {
        GuestMemory memory = GuestMemory.CreateAnonymous(new GuestAddress(0), 0x1000);
        Assert.True(memory.TryAcquire());
        memory.Dispose();
        memory.Dispose();

        // The lease keeps the mapping alive.
        Assert.False(memory.IsDisposed);
        Assert.Equal(MemoryError.None, memory.WriteU32(new GuestAddress(0x10), 7));

        memory.Release();
        Assert.True(memory.IsDisposed);
        Assert.False(memory.TryAcquire());
        Assert.Equal(MemoryError.Disposed, memory.ReadU32(new GuestAddress(0x10), out _));
        Assert.Equal(MemoryError.Disposed, memory.WriteU32(new GuestAddress(0x10), 7));
        Assert.Equal(MemoryError.Disposed, memory.LoadU16Acquire(new GuestAddress(0x10), out _));
        Assert.Equal(MemoryError.Disposed, memory.TryGetSpans(new GuestAddress(0x10), 4, out _));
        Assert.Equal(MemoryError.Disposed, memory.CheckRange(new GuestAddress(0x10), 4));
    }

    [Fact]
    public void A_region_shared_by_two_memories_stays_mapped_until_both_are_gone()
    {
        GuestRegion shared = GuestRegion.CreateAnonymous(new GuestAddress(0), 0x1000);
        GuestMemory first = GuestMemory.Create(shared);
        GuestMemory second = GuestMemory.Create(shared);
        shared.Dispose();
        Assert.Equal(MemoryError.None, first.WriteU32(new GuestAddress(0x20), 0x11223344));
        first.Dispose();
        Assert.Equal(MemoryError.None, second.ReadU32(new GuestAddress(0x20), out uint value));
        Assert.Equal(0x11223344u, value);
        second.Dispose();
        Assert.Equal(MemoryError.Disposed, second.ReadU32(new GuestAddress(0x20), out _));
    }

    [Fact]
    public void File_backed_regions_share_bytes_with_the_file_at_the_mmap_offset()
    {
        using Microsoft.Win32.SafeHandles.SafeFileHandle file = SharedMemoryFile.Create("guest-ram", 0x3000);
        int fd = (int)file.DangerousGetHandle();
        using GuestRegion first = GuestRegion.MapFile(new GuestAddress(0x10_0000), 0x1000, fd, 0x1000);
        using GuestRegion second = GuestRegion.MapFile(new GuestAddress(0x20_0000), 0x3000, fd, 0);
        using GuestMemory memory = GuestMemory.Create(first, second);

        // Byte 0 of the first region is byte 0x1000 of the file, which the second region maps at 0x201000.
        Assert.Equal(MemoryError.None, memory.WriteU64(new GuestAddress(0x10_0008), 0xfeedfacecafebeef));
        Assert.Equal(MemoryError.None, memory.ReadU64(new GuestAddress(0x20_1008), out ulong seen));
        Assert.Equal(0xfeedfacecafebeeful, seen);
        Assert.Equal(MemoryError.InvalidAddress, memory.ReadU64(new GuestAddress(0x10_1000), out _));
    }

    [Fact]
    public void Mapping_a_bad_descriptor_is_an_io_error()
    {
        Assert.Throws<IOException>(() => GuestRegion.MapFile(new GuestAddress(0), 0x1000, -1, 0));
    }

    [Fact]
    public void Every_error_has_a_readable_message()
    {
        foreach (MemoryError error in Enum.GetValues<MemoryError>())
        {
            Assert.DoesNotContain("unknown", error.Describe());
        }

        var exception = new GuestMemoryException(MemoryError.InvalidAddress, new GuestAddress(0x1234));
        Assert.Contains("0x1234", exception.Message);
        Assert.Throws<GuestMemoryException>(() => MemoryError.RangeOutsideMemory.ThrowIfError(new GuestAddress(1)));
    }
}
