using Virtio.Memory;

namespace Virtio.Queue.Tests.Configuration;

public sealed class QueueValidationTests : IDisposable
{
    private readonly GuestMemory _memory = GuestMemory.CreateAnonymous(new GuestAddress(0), 0x10000);

    public void Dispose() => _memory.Dispose();

    private static VirtQueue ValidQueue(ushort max = 256, ushort size = 16) => new(max)
    {
        Size = size,
        DescriptorTable = new GuestAddress(0x1000),
        AvailRing = new GuestAddress(0x2000),
        UsedRing = new GuestAddress(0x3000),
        Ready = true,
    };

    [Fact]
    public void A_well_formed_configuration_validates()
    {
        Assert.Equal(QueueError.None, ValidQueue().Validate(_memory));
    }

    [Fact]
    public void A_new_queue_has_its_maximum_size_and_is_not_ready()
    {
        var queue = new VirtQueue(128);
        Assert.Equal(128, queue.Size);
        Assert.Equal(128, queue.MaxSize);
        Assert.False(queue.Ready);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(40000)]
    [InlineData(65535)]
    public void The_maximum_size_must_be_a_valid_queue_size(int max)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new VirtQueue((ushort)max));
    }

    [Theory]
    [InlineData(0, QueueError.SizeZero)]
    [InlineData(3, QueueError.SizeNotPowerOfTwo)]
    [InlineData(100, QueueError.SizeNotPowerOfTwo)]
    [InlineData(32769, QueueError.SizeTooLarge)]
    [InlineData(65535, QueueError.SizeTooLarge)]
    [InlineData(512, QueueError.SizeAboveMaximum)]
    [InlineData(1, QueueError.None)]
    [InlineData(256, QueueError.None)]
    public void Size_errors_are_reported_precisely(int size, QueueError expected)
    {
        using GuestMemory big = GuestMemory.CreateAnonymous(new GuestAddress(0), 0x100000);
        VirtQueue queue = ValidQueue(256, (ushort)size);
        queue.DescriptorTable = new GuestAddress(0x10000);
        queue.AvailRing = new GuestAddress(0x30000);
        queue.UsedRing = new GuestAddress(0x40000);
        Assert.Equal(expected, queue.Validate(big));
    }

    [Fact]
    public void The_largest_queue_size_is_accepted()
    {
        using GuestMemory big = GuestMemory.CreateAnonymous(new GuestAddress(0), 0x200000);
        var queue = new VirtQueue(32768)
        {
            DescriptorTable = new GuestAddress(0),
            AvailRing = new GuestAddress(0x80000),
            UsedRing = new GuestAddress(0x90000),
            Ready = true,
        };
        Assert.Equal(32768, queue.Size);
        Assert.Equal(QueueError.None, queue.Validate(big));
    }

    [Theory]
    [InlineData(0x1008, 0x2000, 0x3000, QueueError.DescriptorTableMisaligned)]
    [InlineData(0x1000, 0x2001, 0x3000, QueueError.AvailRingMisaligned)]
    [InlineData(0x1000, 0x2000, 0x3002, QueueError.UsedRingMisaligned)]
    [InlineData(0x1010, 0x2002, 0x3004, QueueError.None)]
    public void Each_ring_alignment_is_checked(ulong desc, ulong avail, ulong used, QueueError expected)
    {
        VirtQueue queue = ValidQueue();
        queue.DescriptorTable = new GuestAddress(desc);
        queue.AvailRing = new GuestAddress(avail);
        queue.UsedRing = new GuestAddress(used);
        Assert.Equal(expected, queue.Validate(_memory));
    }

    [Theory]
    [InlineData(0x10000, 0x2000, 0x3000, QueueError.DescriptorTableOutsideMemory)]
    [InlineData(0xff80, 0x2000, 0x3000, QueueError.DescriptorTableOutsideMemory)] // starts inside, runs past the end
    [InlineData(0xffff_ffff_ffff_fff0, 0x2000, 0x3000, QueueError.DescriptorTableOutsideMemory)] // overflows
    [InlineData(0x1000, 0xfff0, 0x3000, QueueError.AvailRingOutsideMemory)]
    [InlineData(0x1000, 0x2000, 0xff80, QueueError.UsedRingOutsideMemory)]
    [InlineData(0x1000, 0x2000, 0x20000, QueueError.UsedRingOutsideMemory)]
    public void Each_ring_must_lie_inside_guest_memory(ulong desc, ulong avail, ulong used, QueueError expected)
    {
        VirtQueue queue = ValidQueue();
        queue.DescriptorTable = new GuestAddress(desc);
        queue.AvailRing = new GuestAddress(avail);
        queue.UsedRing = new GuestAddress(used);
        Assert.Equal(expected, queue.Validate(_memory));
    }

    [Fact]
    public void The_used_event_and_avail_event_fields_are_part_of_the_ring_sizes()
    {
        // avail ring of size 16 is 6 + 32 = 38 bytes: it must fit entirely, used_event included.
        VirtQueue queue = ValidQueue();
        queue.AvailRing = new GuestAddress(0x10000 - 36);
        Assert.Equal(QueueError.AvailRingOutsideMemory, queue.Validate(_memory));
        queue.AvailRing = new GuestAddress(0x10000 - 38);
        Assert.Equal(QueueError.None, queue.Validate(_memory));

        queue.UsedRing = new GuestAddress(0x10000 - 132); // 6 + 8 * 16 = 134
        Assert.Equal(QueueError.UsedRingOutsideMemory, queue.Validate(_memory));
        queue.UsedRing = new GuestAddress(0x10000 - 136);
        Assert.Equal(QueueError.None, queue.Validate(_memory));
    }

    [Fact]
    public void A_queue_that_is_not_ready_is_reported_after_every_other_problem()
    {
        VirtQueue queue = ValidQueue();
        queue.Ready = false;
        Assert.Equal(QueueError.NotReady, queue.Validate(_memory));
        queue.Size = 3;
        Assert.Equal(QueueError.SizeNotPowerOfTwo, queue.Validate(_memory));
    }

    [Fact]
    public void Rings_may_span_adjacent_regions()
    {
        using GuestRegion low = GuestRegion.CreateAnonymous(new GuestAddress(0), 0x1008);
        using GuestRegion high = GuestRegion.CreateAnonymous(new GuestAddress(0x1008), 0x10000);
        using GuestMemory split = GuestMemory.Create(low, high);
        Assert.Equal(QueueError.None, ValidQueue().Validate(split));
    }

    [Fact]
    public void Rings_across_a_hole_are_outside_memory()
    {
        using GuestRegion low = GuestRegion.CreateAnonymous(new GuestAddress(0), 0x1008);
        using GuestRegion high = GuestRegion.CreateAnonymous(new GuestAddress(0x2000), 0x10000);
        using GuestMemory split = GuestMemory.Create(low, high);
        Assert.Equal(QueueError.DescriptorTableOutsideMemory, ValidQueue().Validate(split));
    }

    [Fact]
    public void Disposed_memory_is_reported()
    {
        GuestMemory memory = GuestMemory.CreateAnonymous(new GuestAddress(0), 0x10000);
        memory.Dispose();
        Assert.Equal(QueueError.MemoryDisposed, ValidQueue().Validate(memory));
    }

    [Fact]
    public void Data_path_calls_return_the_configuration_error()
    {
        VirtQueue queue = ValidQueue();
        queue.UsedRing = new GuestAddress(0x3001);
        Assert.False(queue.TryPopChain(_memory, out _, out QueueError error));
        Assert.Equal(QueueError.UsedRingMisaligned, error);
        Assert.Equal(QueueError.UsedRingMisaligned, queue.AddUsed(_memory, 0, 0));
        Assert.Equal(QueueError.UsedRingMisaligned, queue.EnableNotification(_memory, out _));
        Assert.Equal(QueueError.UsedRingMisaligned, queue.DisableNotification(_memory));
        Assert.False(queue.HasAvailable(_memory));
        Assert.True(queue.NeedsNotification(_memory));

        queue.UsedRing = new GuestAddress(0x3000);
        Assert.False(queue.TryPopChain(_memory, out _, out error));
        Assert.Equal(QueueError.None, error);

        queue.Ready = false;
        Assert.False(queue.TryPopChain(_memory, out _, out error));
        Assert.Equal(QueueError.NotReady, error);
    }

    [Fact]
    public void Every_error_has_its_own_description()
    {
        QueueError[] all = Enum.GetValues<QueueError>();
        var descriptions = all.Select(e => e.Describe()).ToList();
        Assert.DoesNotContain("unknown queue error", descriptions);
        Assert.Equal(all.Length, descriptions.Distinct().Count());
        Assert.Equal("unknown queue error", ((QueueError)999).Describe());
        Assert.Equal("the descriptor table is not 16-byte aligned", QueueError.DescriptorTableMisaligned.Describe());
    }
}
