using Virtio.Memory;
using Virtio.Queue.Testing;
using static Virtio.Queue.Tests.QueueHarness;

namespace Virtio.Queue.Tests.Testing;

public sealed class TestDriverTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(16)]
    [InlineData(256)]
    [InlineData(32768)]
    public void A_packed_layout_has_spec_sizes_alignments_and_no_overlap(int size)
    {
        QueueLayout layout = QueueLayout.At(At(0x1003), (ushort)size);
        Assert.Equal(0x1010UL, layout.DescriptorTable.Value);
        Assert.Equal((uint)(16 * size), layout.DescriptorTableBytes);
        Assert.Equal((uint)(6 + (2 * size)), layout.AvailRingBytes);
        Assert.Equal((uint)(6 + (8 * size)), layout.UsedRingBytes);
        Assert.Equal(layout.DescriptorTable.Value + layout.DescriptorTableBytes, layout.AvailRing.Value);
        Assert.True(layout.UsedRing.Value >= layout.AvailRing.Value + layout.AvailRingBytes);
        Assert.True(layout.UsedRing.IsAligned(4));
        Assert.Equal(layout.UsedRing.Value + layout.UsedRingBytes, layout.End.Value);
        Assert.Equal(layout.AvailRing.Value + 4 + (2UL * (uint)size), layout.UsedEventAddress.Value);
        Assert.Equal(layout.UsedRing.Value + 4 + (8UL * (uint)size), layout.AvailEventAddress.Value);
    }

    [Fact]
    public void Explicit_layouts_are_checked()
    {
        Assert.Throws<ArgumentException>(() => new QueueLayout(3, At(0), At(0x1000), At(0x2000)));
        Assert.Throws<ArgumentException>(() => new QueueLayout(16, At(8), At(0x1000), At(0x2000)));
        Assert.Throws<ArgumentException>(() => new QueueLayout(16, At(0), At(0x1001), At(0x2000)));
        Assert.Throws<ArgumentException>(() => new QueueLayout(16, At(0), At(0x1000), At(0x2002)));
        Assert.Throws<ArgumentException>(() => new QueueLayout(16, At(0), At(0xf0), At(0x2000))); // avail overlaps desc
        Assert.Throws<ArgumentException>(() => new QueueLayout(16, At(0), At(0x1000), At(0x1024))); // used overlaps avail
        var layout = new QueueLayout(256, At(0), At(0x1000), At(0x2000));
        Assert.Equal(0x2000UL + 6 + (8 * 256), layout.End.Value);
        Assert.Contains("size 256", layout.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void The_allocator_hands_out_aligned_disjoint_ranges()
    {
        var allocator = new GuestAllocator(At(0x1001), 0x1000);
        GuestAddress a = allocator.Allocate(10);
        GuestAddress b = allocator.Allocate(1, 1);
        GuestAddress c = allocator.Allocate(0x100, 0x100);
        Assert.Equal((0x1010UL, 0x101aUL, 0x1100UL), (a.Value, b.Value, c.Value));
        Assert.Throws<InvalidOperationException>(() => allocator.Allocate(0x1000));
        Assert.Throws<ArgumentOutOfRangeException>(() => allocator.Allocate(1, 3));
        allocator.Reset();
        Assert.Equal(0x1001UL, allocator.Next.Value);
        Assert.Equal(0x1000UL, allocator.Remaining);
    }

    [Fact]
    public void Layouts_can_be_allocated()
    {
        using GuestMemory memory = GuestMemory.CreateAnonymous(At(0x4000_0000), 0x100000);
        GuestAllocator allocator = GuestAllocator.ForFirstRegion(memory);
        QueueLayout first = QueueLayout.Allocate(allocator, 64);
        QueueLayout second = QueueLayout.Allocate(allocator, 64);
        Assert.Equal(0x4000_0000UL, first.DescriptorTable.Value);
        Assert.True(second.Start >= first.End);
        var queue = new VirtQueue(64);
        new TestDriver(memory, second).Configure(queue);
        Assert.Equal(QueueError.None, queue.Validate(memory));
    }

    [Fact]
    public void Descriptors_are_recycled_through_the_free_list()
    {
        using var h = new QueueHarness(size: 4);
        for (int round = 0; round < 10; round++)
        {
            h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 1), TestBuffer.DeviceWritable(0x11000, 1));
            h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 1), TestBuffer.DeviceWritable(0x11000, 1));
            Assert.Equal(0, h.Driver.FreeDescriptors);
            Assert.False(h.Driver.TryAddChain([TestBuffer.DeviceReadable(0x10000, 1)], out _));
            Assert.Throws<InvalidOperationException>(() => h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 1)));
            h.Driver.Publish();
            Assert.Equal(2, h.Driver.OutstandingChains);
            for (int i = 0; i < 2; i++)
            {
                DescriptorChain chain = h.Pop();
                Assert.Equal(2, QueueHarness.Walk(chain).Descriptors.Count);
                h.Queue.AddUsed(h.Memory, chain.HeadIndex, 1);
            }

            Assert.True(h.Driver.TryTakeUsed(out _));
            Assert.True(h.Driver.TryTakeUsed(out _));
            Assert.Equal(4, h.Driver.FreeDescriptors);
            Assert.Equal(0, h.Driver.OutstandingChains);
        }
    }

    [Fact]
    public void Taking_back_a_head_that_is_not_outstanding_throws()
    {
        using var h = new QueueHarness();
        h.Queue.AddUsed(h.Memory, 5, 0);
        Assert.Throws<InvalidOperationException>(() => h.Driver.TryTakeUsed(out _));
    }

    [Fact]
    public void Raw_accessors_round_trip()
    {
        using var h = new QueueHarness();
        var descriptor = new Descriptor(At(0x1234), 99, DescriptorFlags.Indirect | (DescriptorFlags)0x40, 7);
        h.Driver.WriteDescriptor(3, descriptor);
        Assert.Equal(descriptor, h.Driver.ReadDescriptor(3));
        h.Driver.UsedEvent = 0xbeef;
        Assert.Equal(0xbeef, h.Driver.UsedEvent);
        h.Driver.NoInterrupt = true;
        Assert.True(h.Driver.NoInterrupt);
        Assert.Throws<ArgumentOutOfRangeException>(() => h.Driver.WriteDescriptor(16, descriptor));
    }

    [Fact]
    public void Configure_copies_layout_and_features()
    {
        using GuestMemory memory = GuestMemory.CreateAnonymous(At(0), 0x10000);
        var driver = new TestDriver(memory, QueueLayout.At(At(0x100), 32), eventIdx: true, indirectDescriptors: false);
        var queue = new VirtQueue(64);
        driver.Configure(queue);
        Assert.Equal((32, 0x100UL, true, false, true), (queue.Size, queue.DescriptorTable.Value, queue.EventIdx, queue.IndirectDescriptors, queue.Ready));
        Assert.Equal(driver.Layout.AvailRing, queue.AvailRing);
        Assert.Equal(driver.Layout.UsedRing, queue.UsedRing);
    }
}
