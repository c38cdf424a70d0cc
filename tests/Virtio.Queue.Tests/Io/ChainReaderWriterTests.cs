using Virtio.Memory;
using Virtio.Queue.Testing;
using static Virtio.Queue.Tests.QueueHarness;

namespace Virtio.Queue.Tests.Io;

public sealed class ChainReaderWriterTests
{
    private static byte[] Pattern(int length, int seed = 1) =>
        Enumerable.Range(0, length).Select(i => (byte)((i * 31) + seed)).ToArray();

    [Fact]
    public void The_reader_reads_across_descriptors_and_stops_at_the_writable_part()
    {
        using var h = new QueueHarness();
        byte[] data = Pattern(44 + 100);
        h.Memory.Write(At(0x10000), data.AsSpan(0, 44));
        h.Memory.Write(At(0x11000), data.AsSpan(44));
        h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 44), TestBuffer.DeviceReadable(0x11000, 100), TestBuffer.DeviceWritable(0x12000, 4096));
        h.Driver.Publish();
        var reader = new DescriptorChainReader(h.Pop());
        Assert.Equal(144UL, reader.Remaining);

        var buffer = new byte[200];
        Assert.Equal(QueueError.None, reader.Read(buffer.AsSpan(0, 10), out int first));
        Assert.Equal(QueueError.None, reader.Read(buffer.AsSpan(10), out int rest));
        Assert.Equal((10, 134), (first, rest));
        Assert.Equal(data, buffer[..144]);
        Assert.Equal((0UL, 144UL), (reader.Remaining, reader.BytesRead));
        Assert.Equal(QueueError.None, reader.Read(buffer, out int none));
        Assert.Equal(0, none);
    }

    [Fact]
    public void Read_exactly_reads_nothing_when_too_few_bytes_remain()
    {
        using var h = new QueueHarness();
        h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 10));
        h.Driver.Publish();
        var reader = new DescriptorChainReader(h.Pop());
        Assert.Equal(QueueError.NotEnoughReadableBytes, reader.ReadExactly(new byte[11]));
        Assert.Equal(10UL, reader.Remaining);
        Assert.Equal(QueueError.None, reader.ReadExactly(new byte[10]));
        Assert.Equal(QueueError.NotEnoughReadableBytes, reader.ReadExactly(new byte[1]));
    }

    [Fact]
    public void The_writer_skips_the_readable_part_and_counts_the_used_length()
    {
        using var h = new QueueHarness();
        h.Driver.AddChain(
            TestBuffer.DeviceReadable(0x10000, 44),
            TestBuffer.DeviceWritable(0x11000, 10),
            TestBuffer.DeviceWritable(0x12000, 0),
            TestBuffer.DeviceWritable(0x13000, 100));
        h.Driver.Publish();
        DescriptorChain chain = h.Pop();
        var writer = new DescriptorChainWriter(chain);
        Assert.Equal(110UL, writer.Remaining);
        byte[] data = Pattern(60);
        Assert.Equal(QueueError.None, writer.Write(data.AsSpan(0, 4)));
        Assert.Equal(QueueError.None, writer.Write(data.AsSpan(4)));
        Assert.Equal(60u, writer.BytesWritten);
        Assert.Equal(50UL, writer.Remaining);

        var back = new byte[60];
        h.Memory.Read(At(0x11000), back.AsSpan(0, 10));
        h.Memory.Read(At(0x13000), back.AsSpan(10));
        Assert.Equal(data, back);

        Assert.Equal(QueueError.NotEnoughWritableSpace, writer.Write(new byte[51]));
        Assert.Equal(60u, writer.BytesWritten);
        Assert.Equal(QueueError.None, writer.Write(new byte[50]));
        Assert.Equal(110u, writer.BytesWritten);
        Assert.Equal(QueueError.None, h.Queue.AddUsed(h.Memory, chain.HeadIndex, writer.BytesWritten));
        Assert.True(h.Driver.TryTakeUsed(out UsedElement used));
        Assert.Equal(110u, used.Length);
    }

    [Fact]
    public void Reader_and_writer_work_across_regions()
    {
        using GuestRegion low = GuestRegion.CreateAnonymous(At(0), 0x18000);
        using GuestRegion mid = GuestRegion.CreateAnonymous(At(0x18000), 0x100);
        using GuestRegion high = GuestRegion.CreateAnonymous(At(0x18100), 0x10000);
        using var h = new QueueHarness(memory: GuestMemory.Create(low, mid, high));
        byte[] data = Pattern(0x1000, 7);
        h.Memory.Write(At(0x17800), data).ThrowIfError(At(0x17800));
        h.Driver.AddChain(TestBuffer.DeviceReadable(0x17800, 0x1000), TestBuffer.DeviceWritable(0x17f00, 0x800));
        h.Driver.Publish();
        DescriptorChain chain = h.Pop();

        var reader = new DescriptorChainReader(chain);
        var read = new byte[0x1000];
        Assert.Equal(QueueError.None, reader.ReadExactly(read));
        Assert.Equal(data, read);

        var writer = new DescriptorChainWriter(chain);
        byte[] output = Pattern(0x800, 3);
        Assert.Equal(QueueError.None, writer.Write(output));
        Assert.Equal(0x800u, writer.BytesWritten);
        var back = new byte[0x800];
        h.Memory.Read(At(0x17f00), back).ThrowIfError(At(0x17f00));
        Assert.Equal(output, back);
    }

    [Fact]
    public void Spans_stop_at_region_boundaries_and_advance_in_pieces()
    {
        using GuestRegion low = GuestRegion.CreateAnonymous(At(0), 0x18000);
        using GuestRegion high = GuestRegion.CreateAnonymous(At(0x18000), 0x10000);
        using var h = new QueueHarness(memory: GuestMemory.Create(low, high));
        h.Driver.AddChain(TestBuffer.DeviceWritable(0x17f00, 0x200));
        h.Driver.Publish();
        var writer = new DescriptorChainWriter(h.Pop());
        Assert.Equal(QueueError.None, writer.GetSpan(int.MaxValue, out Span<byte> span));
        Assert.Equal(0x100, span.Length);
        span.Fill(0xaa);
        writer.Advance(0x80);
        Assert.Equal(QueueError.None, writer.GetSpan(int.MaxValue, out span));
        Assert.Equal(0x80, span.Length);
        writer.Advance(0x80);
        Assert.Equal(QueueError.None, writer.GetSpan(0x10, out span));
        Assert.Equal(0x10, span.Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.Advance(0x11));
        writer.Advance(0x10);
        Assert.Equal(0x110u, writer.BytesWritten);
        Assert.Equal(0xf0UL, writer.Remaining);
    }

    [Fact]
    public void Peek_does_not_consume()
    {
        using var h = new QueueHarness();
        h.Memory.Write(At(0x10000), Pattern(16));
        h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 16));
        h.Driver.Publish();
        var reader = new DescriptorChainReader(h.Pop());
        Assert.Equal(QueueError.None, reader.PeekSpan(8, out ReadOnlySpan<byte> first));
        Assert.Equal(QueueError.None, reader.PeekSpan(8, out ReadOnlySpan<byte> again));
        Assert.Equal(8, first.Length);
        Assert.True(first.SequenceEqual(again));
        reader.Advance(8);
        Assert.Equal(QueueError.None, reader.PeekSpan(100, out ReadOnlySpan<byte> last));
        Assert.Equal(Pattern(16)[8..], last.ToArray());
    }

    [Fact]
    public void Indirect_chains_are_read_and_written_like_direct_ones()
    {
        using var h = new QueueHarness();
        h.Memory.Write(At(0x10000), Pattern(44));
        h.Driver.AddIndirectChain(At(0x20000), TestBuffer.DeviceReadable(0x10000, 44), TestBuffer.DeviceWritable(0x11000, 4096));
        h.Driver.Publish();
        DescriptorChain chain = h.Pop();
        var reader = new DescriptorChainReader(chain);
        var header = new byte[44];
        Assert.Equal(QueueError.None, reader.ReadExactly(header));
        Assert.Equal(Pattern(44), header);
        var writer = new DescriptorChainWriter(chain);
        Assert.Equal(4096UL, writer.Remaining);
        Assert.Equal(QueueError.None, writer.Write(Pattern(4096)));
        Assert.Equal(4096u, writer.BytesWritten);
    }

    [Fact]
    public void A_malformed_chain_yields_no_bytes_only_its_error()
    {
        using var h = new QueueHarness();
        h.Driver.WriteDescriptor(0, At(0x10000), 8, DescriptorFlags.Next, 1);
        h.Driver.WriteDescriptor(1, At(0x11000), 8, DescriptorFlags.Write | DescriptorFlags.Next, 2);
        h.Driver.WriteDescriptor(2, At(0x12000), 8, DescriptorFlags.Next, 99);
        DescriptorChain chain = h.PublishAndPop(0);

        var reader = new DescriptorChainReader(chain);
        Assert.Equal(QueueError.ReadableAfterWritable, reader.Error);
        Assert.Equal(0UL, reader.Remaining);
        Assert.Equal(QueueError.ReadableAfterWritable, reader.Read(new byte[8], out int read));
        Assert.Equal(0, read);

        var writer = new DescriptorChainWriter(chain);
        Assert.Equal(QueueError.ReadableAfterWritable, writer.Write(new byte[1]));
        Assert.Equal(0u, writer.BytesWritten);
        Assert.Equal(QueueError.ReadableAfterWritable, writer.GetSpan(8, out Span<byte> span));
        Assert.True(span.IsEmpty);
    }

    [Fact]
    public void A_chain_without_writable_part_has_no_room()
    {
        using var h = new QueueHarness();
        h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 8));
        h.Driver.Publish();
        var writer = new DescriptorChainWriter(h.Pop());
        Assert.Equal(0UL, writer.Remaining);
        Assert.Equal(QueueError.NotEnoughWritableSpace, writer.Write(new byte[1]));
        Assert.Equal(QueueError.None, writer.Write([]));
    }

    [Fact]
    public void A_chain_shortened_by_the_driver_after_measuring_stops_the_writer_cleanly()
    {
        using var h = new QueueHarness();
        ushort head = h.Driver.AddChain(TestBuffer.DeviceWritable(0x11000, 8), TestBuffer.DeviceWritable(0x12000, 8));
        h.Driver.Publish();
        var writer = new DescriptorChainWriter(h.Pop());
        Assert.Equal(16UL, writer.Remaining);
        // Hostile driver: cut the chain after the first descriptor.
        h.Driver.WriteDescriptor(head, At(0x11000), 8, DescriptorFlags.Write, 0);
        Assert.Equal(QueueError.NotEnoughWritableSpace, writer.Write(new byte[16]));
        Assert.Equal(8u, writer.BytesWritten);
    }
}
