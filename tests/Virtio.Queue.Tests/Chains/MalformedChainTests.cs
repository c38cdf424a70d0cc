using Virtio.Memory;
using Virtio.Queue.Testing;
using static Virtio.Queue.Tests.QueueHarness;

namespace Virtio.Queue.Tests.Chains;

/// <summary>Every hostile-input rule of virtqueue.md, one malformed chain at a time.</summary>
public sealed class MalformedChainTests : IDisposable
{
    private readonly QueueHarness _h = new(size: 16);

    public void Dispose() => _h.Dispose();

    private TestDriver Driver => _h.Driver;

    private (List<Descriptor> Descriptors, QueueError Error) Run(ushort head) => _h.PublishPopWalk(head);

    [Fact]
    public void A_head_index_out_of_range_is_an_error_and_the_head_is_known()
    {
        DescriptorChain chain = _h.PublishAndPop(16);
        Assert.Equal(16, chain.HeadIndex);
        (List<Descriptor> descriptors, QueueError error) = Walk(chain);
        Assert.Empty(descriptors);
        Assert.Equal(QueueError.HeadIndexOutOfRange, error);
        Assert.Equal(QueueError.HeadIndexOutOfRange, _h.Queue.AddUsed(_h.Memory, chain.HeadIndex, 0));
        Assert.Equal(0, _h.Queue.NextUsed);
    }

    [Fact]
    public void A_next_index_out_of_range_is_an_error_after_the_valid_descriptors()
    {
        Driver.WriteDescriptor(0, At(0x10000), 8, DescriptorFlags.Next, 16);
        (List<Descriptor> descriptors, QueueError error) = Run(0);
        Assert.Single(descriptors);
        Assert.Equal(QueueError.NextIndexOutOfRange, error);
    }

    [Fact]
    public void A_self_loop_is_too_long()
    {
        Driver.WriteDescriptor(0, At(0x10000), 8, DescriptorFlags.Next, 0);
        (List<Descriptor> descriptors, QueueError error) = Run(0);
        Assert.Equal(16, descriptors.Count);
        Assert.Equal(QueueError.ChainTooLong, error);
    }

    [Fact]
    public void A_loop_through_several_descriptors_is_too_long()
    {
        Driver.WriteDescriptor(2, At(0x10000), 8, DescriptorFlags.Next, 7);
        Driver.WriteDescriptor(7, At(0x10000), 8, DescriptorFlags.Next, 11);
        Driver.WriteDescriptor(11, At(0x10000), 8, DescriptorFlags.Next, 2);
        Assert.Equal(QueueError.ChainTooLong, Run(2).Error);
    }

    [Fact]
    public void A_chain_using_every_descriptor_once_is_not_a_loop()
    {
        for (ushort i = 0; i < 16; i++)
        {
            Driver.WriteDescriptor(i, At(0x10000 + (i * 0x10UL)), 16, i == 15 ? DescriptorFlags.None : DescriptorFlags.Next, (ushort)(i + 1));
        }

        (List<Descriptor> descriptors, QueueError error) = Run(0);
        Assert.Equal(QueueError.None, error);
        Assert.Equal(16, descriptors.Count);
    }

    [Fact]
    public void A_loop_inside_an_indirect_table_is_too_long()
    {
        Driver.WriteTableDescriptor(At(0x20000), 0, At(0x10000), 8, DescriptorFlags.Next, 1);
        Driver.WriteTableDescriptor(At(0x20000), 1, At(0x10000), 8, DescriptorFlags.Next, 0);
        Driver.WriteDescriptor(0, At(0x20000), 32, DescriptorFlags.Indirect, 0);
        (List<Descriptor> descriptors, QueueError error) = Run(0);
        Assert.Equal(16, descriptors.Count);
        Assert.Equal(QueueError.ChainTooLong, error);
    }

    [Fact]
    public void Indirect_entries_count_towards_the_chain_length()
    {
        // 10 direct descriptors then an indirect table of 10: 20 buffers in a queue of 16.
        for (ushort i = 0; i < 10; i++)
        {
            Driver.WriteDescriptor(i, At(0x10000), 8, DescriptorFlags.Next, (ushort)(i + 1));
        }

        for (int i = 0; i < 10; i++)
        {
            Driver.WriteTableDescriptor(At(0x20000), i, At(0x10000), 8, i == 9 ? DescriptorFlags.None : DescriptorFlags.Next, (ushort)(i + 1));
        }

        Driver.WriteDescriptor(10, At(0x20000), 160, DescriptorFlags.Indirect, 0);
        (List<Descriptor> descriptors, QueueError error) = Run(0);
        Assert.Equal(16, descriptors.Count);
        Assert.Equal(QueueError.ChainTooLong, error);
    }

    [Fact]
    public void A_next_index_beyond_the_indirect_table_is_out_of_range()
    {
        Driver.WriteTableDescriptor(At(0x20000), 0, At(0x10000), 8, DescriptorFlags.Next, 2);
        Driver.WriteDescriptor(0, At(0x20000), 32, DescriptorFlags.Indirect, 0);
        (List<Descriptor> descriptors, QueueError error) = Run(0);
        Assert.Single(descriptors);
        Assert.Equal(QueueError.NextIndexOutOfRange, error);
    }

    [Fact]
    public void Indirect_with_next_is_an_error()
    {
        Driver.WriteTableDescriptor(At(0x20000), 0, At(0x10000), 8, DescriptorFlags.None, 0);
        Driver.WriteDescriptor(0, At(0x20000), 16, DescriptorFlags.Indirect | DescriptorFlags.Next, 1);
        Assert.Equal(QueueError.IndirectWithNext, Run(0).Error);
    }

    [Fact]
    public void A_nested_indirect_descriptor_is_an_error()
    {
        Driver.WriteTableDescriptor(At(0x20100), 0, At(0x10000), 8, DescriptorFlags.None, 0);
        Driver.WriteTableDescriptor(At(0x20000), 0, At(0x20100), 16, DescriptorFlags.Indirect, 0);
        Driver.WriteDescriptor(0, At(0x20000), 16, DescriptorFlags.Indirect, 0);
        Assert.Equal(QueueError.NestedIndirect, Run(0).Error);
    }

    [Fact]
    public void A_nested_indirect_descriptor_later_in_the_table_is_an_error()
    {
        Driver.WriteTableDescriptor(At(0x20000), 0, At(0x10000), 8, DescriptorFlags.Next, 1);
        Driver.WriteTableDescriptor(At(0x20000), 1, At(0x20000), 32, DescriptorFlags.Indirect, 0);
        Driver.WriteDescriptor(0, At(0x20000), 32, DescriptorFlags.Indirect, 0);
        (List<Descriptor> descriptors, QueueError error) = Run(0);
        Assert.Single(descriptors);
        Assert.Equal(QueueError.NestedIndirect, error);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(8u)]
    [InlineData(17u)]
    [InlineData(24u)]
    [InlineData((32768u + 1) * 16)]
    [InlineData(uint.MaxValue)]
    public void A_bad_indirect_table_length_is_an_error(uint length)
    {
        Driver.WriteDescriptor(0, At(0x20000), length, DescriptorFlags.Indirect, 0);
        Assert.Equal(QueueError.InvalidIndirectLength, Run(0).Error);
    }

    [Fact]
    public void An_indirect_table_of_32768_entries_is_a_valid_length()
    {
        // 512 KiB table fits in the 1 MiB memory; a long table is fine as long as the chain is short.
        Driver.WriteTableDescriptor(At(0x80000), 0, At(0x10000), 8, DescriptorFlags.None, 0);
        Driver.WriteDescriptor(0, At(0x80000), 32768 * 16, DescriptorFlags.Indirect, 0);
        (List<Descriptor> descriptors, QueueError error) = Run(0);
        Assert.Equal(QueueError.None, error);
        Assert.Single(descriptors);
    }

    [Fact]
    public void Indirect_without_the_feature_is_an_error()
    {
        using var h = new QueueHarness(indirect: false);
        h.Driver.AddIndirectChain(At(0x20000), TestBuffer.DeviceReadable(0x10000, 8));
        h.Driver.Publish();
        Assert.Equal(QueueError.IndirectNotNegotiated, Walk(h.Pop()).Error);
    }

    [Fact]
    public void An_indirect_table_outside_memory_is_an_error()
    {
        Driver.WriteDescriptor(0, At(0x100000 - 16), 32, DescriptorFlags.Indirect, 0);
        Assert.Equal(QueueError.DescriptorOutsideMemory, Run(0).Error);
    }

    [Fact]
    public void An_indirect_table_address_that_overflows_is_an_error()
    {
        Driver.WriteDescriptor(0, At(ulong.MaxValue - 15), 32, DescriptorFlags.Indirect, 0);
        Assert.Equal(QueueError.DescriptorAddressOverflow, Run(0).Error);
    }

    [Fact]
    public void A_readable_descriptor_after_a_writable_one_is_an_error()
    {
        ushort head = Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 8), TestBuffer.DeviceWritable(0x11000, 8), TestBuffer.DeviceReadable(0x12000, 8));
        Driver.Publish();
        (List<Descriptor> descriptors, QueueError error) = Walk(_h.Pop());
        Assert.Equal(2, descriptors.Count);
        Assert.Equal(QueueError.ReadableAfterWritable, error);
        Assert.Equal(QueueError.None, _h.Queue.AddUsed(_h.Memory, head, 0));
    }

    [Fact]
    public void The_readable_before_writable_rule_spans_the_indirect_boundary()
    {
        Driver.WriteTableDescriptor(At(0x20000), 0, At(0x10000), 8, DescriptorFlags.None, 0);
        Driver.WriteDescriptor(0, At(0x11000), 8, DescriptorFlags.Write | DescriptorFlags.Next, 1);
        Driver.WriteDescriptor(1, At(0x20000), 16, DescriptorFlags.Indirect, 0);
        Assert.Equal(QueueError.ReadableAfterWritable, Run(0).Error);
    }

    [Theory]
    [InlineData(0xffff_ffff_ffff_fff0UL, 0x20u)]
    [InlineData(ulong.MaxValue, 2u)]
    [InlineData(0xffff_ffff_0000_0002UL, uint.MaxValue)]
    public void An_address_plus_length_overflow_is_an_error(ulong address, uint length)
    {
        Driver.WriteDescriptor(0, At(address), length, DescriptorFlags.None, 0);
        Assert.Equal(QueueError.DescriptorAddressOverflow, Run(0).Error);
    }

    [Theory]
    [InlineData(0x100000UL, 1u)] // just past the end
    [InlineData(0xfffffUL, 2u)] // last byte inside, second outside
    [InlineData(0x4000_0000UL, 16u)] // far away
    [InlineData(0xffff_ffff_ffff_fff0UL, 0x10u)] // top of the address space, no overflow
    public void A_buffer_outside_memory_is_an_error(ulong address, uint length)
    {
        Driver.WriteDescriptor(0, At(address), length, DescriptorFlags.Write, 0);
        Assert.Equal(QueueError.DescriptorOutsideMemory, Run(0).Error);
    }

    [Fact]
    public void A_buffer_over_a_hole_between_regions_is_an_error()
    {
        using GuestRegion low = GuestRegion.CreateAnonymous(At(0), 0x18000);
        using GuestRegion high = GuestRegion.CreateAnonymous(At(0x20000), 0x10000);
        using var h = new QueueHarness(memory: GuestMemory.Create(low, high));
        h.Driver.AddChain(TestBuffer.DeviceWritable(0x17000, 0x2000));
        h.Driver.Publish();
        Assert.Equal(QueueError.DescriptorOutsideMemory, Walk(h.Pop()).Error);
    }

    [Fact]
    public void After_an_error_the_chain_keeps_returning_it()
    {
        Driver.WriteDescriptor(0, At(0x10000), 8, DescriptorFlags.Next, 99);
        DescriptorChain chain = _h.PublishAndPop(0);
        Assert.True(chain.TryNext(out _, out _));
        for (int i = 0; i < 3; i++)
        {
            Assert.False(chain.TryNext(out _, out QueueError error));
            Assert.Equal(QueueError.NextIndexOutOfRange, error);
        }

        Assert.Equal(QueueError.NextIndexOutOfRange, chain.Error);
    }

    [Fact]
    public void A_bad_chain_does_not_break_the_queue()
    {
        Driver.WriteDescriptor(0, At(0x10000), 8, DescriptorFlags.Next, 0);
        Driver.WriteDescriptor(1, At(0x10000), 8, DescriptorFlags.None, 0);
        Driver.PushAvail(0);
        Driver.PushAvail(1);
        Driver.Publish();
        DescriptorChain bad = _h.Pop();
        Assert.Equal(QueueError.ChainTooLong, Walk(bad).Error);
        Assert.Equal(QueueError.None, _h.Queue.AddUsed(_h.Memory, bad.HeadIndex, 0));
        DescriptorChain good = _h.Pop();
        Assert.Equal(QueueError.None, Walk(good).Error);
        Assert.Equal(QueueError.None, _h.Queue.AddUsed(_h.Memory, good.HeadIndex, 0));
        Assert.Equal(2, Driver.UsedIndex);
    }
}
