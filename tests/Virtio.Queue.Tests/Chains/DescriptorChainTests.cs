using Virtio.Memory;
using Virtio.Queue.Testing;
using static Virtio.Queue.Tests.QueueHarness;

namespace Virtio.Queue.Tests.Chains;

public sealed class DescriptorChainTests
{
    [Fact]
    public void An_empty_ring_pops_nothing_and_no_error()
    {
        using var h = new QueueHarness();
        Assert.False(h.Queue.TryPopChain(h.Memory, out DescriptorChain chain, out QueueError error));
        Assert.Equal(QueueError.None, error);
        Assert.False(chain.TryNext(out _, out error));
        Assert.Equal(QueueError.None, error);
        Assert.False(h.Queue.HasAvailable(h.Memory));
    }

    [Fact]
    public void A_direct_chain_round_trips_in_order()
    {
        using var h = new QueueHarness();
        ushort head = h.Driver.AddChain(
            TestBuffer.DeviceReadable(0x10000, 44),
            TestBuffer.DeviceReadable(0x11000, 100),
            TestBuffer.DeviceWritable(0x12000, 4096));
        h.Driver.Publish();
        Assert.True(h.Queue.HasAvailable(h.Memory));

        DescriptorChain chain = h.Pop();
        Assert.Equal(head, chain.HeadIndex);
        (List<Descriptor> descriptors, QueueError error) = Walk(chain);
        Assert.Equal(QueueError.None, error);
        Assert.Equal(
            [(0x10000UL, 44u, false, true), (0x11000UL, 100u, false, true), (0x12000UL, 4096u, true, false)],
            descriptors.Select(d => (d.Address.Value, d.Length, d.IsWriteOnly, d.HasNext)));
        Assert.Equal(1, h.Queue.NextAvail);
        Assert.False(h.Queue.HasAvailable(h.Memory));
    }

    [Fact]
    public void After_the_end_the_chain_keeps_returning_false()
    {
        using var h = new QueueHarness();
        h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 8));
        h.Driver.Publish();
        DescriptorChain chain = h.Pop();
        Assert.True(chain.TryNext(out _, out _));
        for (int i = 0; i < 3; i++)
        {
            Assert.False(chain.TryNext(out Descriptor d, out QueueError error));
            Assert.Equal(QueueError.None, error);
            Assert.Equal(default, d);
        }

        Assert.Equal(1, chain.Count);
    }

    [Fact]
    public void A_copy_of_a_chain_walks_independently()
    {
        using var h = new QueueHarness();
        h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 8), TestBuffer.DeviceWritable(0x11000, 8));
        h.Driver.Publish();
        DescriptorChain chain = h.Pop();
        DescriptorChain copy = chain;
        Assert.Equal(2, Walk(copy).Descriptors.Count);
        Assert.Equal(2, Walk(chain).Descriptors.Count);
        Assert.True(chain.TryNext(out Descriptor first, out _));
        Assert.Equal(0x10000UL, first.Address.Value);
    }

    [Fact]
    public void An_indirect_chain_is_entered_transparently()
    {
        using var h = new QueueHarness();
        ushort head = h.Driver.AddIndirectChain(
            At(0x20000),
            TestBuffer.DeviceReadable(0x10000, 44),
            TestBuffer.DeviceWritable(0x11000, 4096),
            TestBuffer.DeviceWritable(0x13000, 10));
        h.Driver.Publish();
        DescriptorChain chain = h.Pop();
        Assert.Equal(head, chain.HeadIndex);
        (List<Descriptor> descriptors, QueueError error) = Walk(chain);
        Assert.Equal(QueueError.None, error);
        Assert.Equal(
            [(0x10000UL, 44u, false), (0x11000UL, 4096u, true), (0x13000UL, 10u, true)],
            descriptors.Select(d => (d.Address.Value, d.Length, d.IsWriteOnly)));
    }

    [Fact]
    public void Direct_descriptors_may_precede_a_final_indirect_descriptor()
    {
        using var h = new QueueHarness();
        h.Driver.WriteTableDescriptor(At(0x20000), 0, At(0x11000), 16, DescriptorFlags.Write, 0);
        h.Driver.WriteDescriptor(3, At(0x10000), 44, DescriptorFlags.Next, 5);
        h.Driver.WriteDescriptor(5, At(0x20000), 16, DescriptorFlags.Indirect, 0);
        (List<Descriptor> descriptors, QueueError error) = h.PublishPopWalk(3);
        Assert.Equal(QueueError.None, error);
        Assert.Equal([0x10000UL, 0x11000UL], descriptors.Select(d => d.Address.Value));
    }

    [Fact]
    public void The_write_flag_of_the_indirect_descriptor_itself_is_ignored()
    {
        using var h = new QueueHarness();
        h.Driver.WriteTableDescriptor(At(0x20000), 0, At(0x10000), 16, DescriptorFlags.None, 0);
        h.Driver.WriteDescriptor(0, At(0x20000), 16, DescriptorFlags.Indirect | DescriptorFlags.Write, 0);
        (List<Descriptor> descriptors, QueueError error) = h.PublishPopWalk(0);
        Assert.Equal(QueueError.None, error);
        Assert.False(Assert.Single(descriptors).IsWriteOnly);
    }

    [Fact]
    public void An_indirect_table_can_hold_as_many_entries_as_the_queue_size()
    {
        using var h = new QueueHarness(size: 4);
        var buffers = Enumerable.Range(0, 4).Select(i => TestBuffer.DeviceWritable(0x10000 + ((ulong)i * 0x100), 0x100)).ToArray();
        h.Driver.AddIndirectChain(At(0x20000), buffers);
        h.Driver.Publish();
        (List<Descriptor> descriptors, QueueError error) = Walk(h.Pop());
        Assert.Equal(QueueError.None, error);
        Assert.Equal(4, descriptors.Count);
    }

    [Fact]
    public void Zero_length_descriptors_are_returned()
    {
        using var h = new QueueHarness();
        h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 0), TestBuffer.DeviceReadable(0xdead_beef_0000, 0), TestBuffer.DeviceWritable(0x11000, 8));
        h.Driver.Publish();
        (List<Descriptor> descriptors, QueueError error) = Walk(h.Pop());
        Assert.Equal(QueueError.None, error);
        Assert.Equal([0u, 0u, 8u], descriptors.Select(d => d.Length));
    }

    [Fact]
    public void Undefined_flag_bits_are_kept_and_ignored()
    {
        using var h = new QueueHarness();
        h.Driver.WriteDescriptor(0, At(0x10000), 8, (DescriptorFlags)0x8000 | DescriptorFlags.Write, 0);
        (List<Descriptor> descriptors, QueueError error) = h.PublishPopWalk(0);
        Assert.Equal(QueueError.None, error);
        Assert.Equal((DescriptorFlags)0x8002, Assert.Single(descriptors).Flags);
    }

    [Fact]
    public void A_buffer_across_two_adjacent_regions_is_accepted()
    {
        using GuestRegion low = GuestRegion.CreateAnonymous(At(0), 0x18000);
        using GuestRegion high = GuestRegion.CreateAnonymous(At(0x18000), 0x18000);
        using var h = new QueueHarness(memory: GuestMemory.Create(low, high));
        h.Driver.AddChain(TestBuffer.DeviceWritable(0x17000, 0x2000));
        h.Driver.Publish();
        (List<Descriptor> descriptors, QueueError error) = Walk(h.Pop());
        Assert.Equal(QueueError.None, error);
        Assert.Equal(0x2000u, Assert.Single(descriptors).Length);
    }

    [Fact]
    public void A_queue_whose_rings_and_indirect_table_cross_regions_still_works()
    {
        // The descriptor table, the used ring and the indirect table straddle region boundaries: no
        // host pointer can be cached for them, and every access takes the checked slow path.
        using GuestRegion a = GuestRegion.CreateAnonymous(At(0), 0x48);
        using GuestRegion b = GuestRegion.CreateAnonymous(At(0x48), 0x140 - 0x48);
        using GuestRegion c = GuestRegion.CreateAnonymous(At(0x140), 0x20000 - 0x140);
        using GuestRegion d = GuestRegion.CreateAnonymous(At(0x20000), 0x20000);
        using var h = new QueueHarness(size: 16, memory: GuestMemory.Create(a, b, c, d));
        Assert.Equal(QueueError.None, h.Queue.Validate(h.Memory));
        for (int round = 0; round < 40; round++)
        {
            ushort head = round % 2 == 0
                ? h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 44), TestBuffer.DeviceWritable(0x11000, 64))
                : h.Driver.AddIndirectChain(At(0x20000 - 8), TestBuffer.DeviceReadable(0x10000, 44), TestBuffer.DeviceWritable(0x11000, 64));
            h.Driver.Publish();
            DescriptorChain chain = h.Pop();
            Assert.Equal(head, chain.HeadIndex);
            (List<Descriptor> descriptors, QueueError error) = Walk(chain);
            Assert.Equal(QueueError.None, error);
            Assert.Equal([44u, 64u], descriptors.Select(d => d.Length));
            Assert.Equal(QueueError.None, h.Queue.AddUsed(h.Memory, head, 64));
            Assert.True(h.Driver.TryTakeUsed(out UsedElement used));
            Assert.Equal(new UsedElement(head, 64), used);
        }
    }

    [Fact]
    public void Indirect_descriptors_popped_after_negotiation_are_accepted()
    {
        using var h = new QueueHarness(indirect: false);
        h.Driver.AddIndirectChain(At(0x20000), TestBuffer.DeviceReadable(0x10000, 4));
        h.Driver.AddIndirectChain(At(0x20000), TestBuffer.DeviceReadable(0x10000, 4));
        h.Driver.Publish();
        Assert.Equal(QueueError.IndirectNotNegotiated, Walk(h.Pop()).Error);
        h.Queue.IndirectDescriptors = true;
        Assert.Equal(QueueError.None, Walk(h.Pop()).Error);
    }

    [Fact]
    public void The_default_chain_is_empty()
    {
        DescriptorChain chain = default;
        Assert.False(chain.TryNext(out _, out QueueError error));
        Assert.Equal(QueueError.None, error);
        Assert.Equal(0, chain.Count);
    }

    [Fact]
    public void Walking_a_chain_after_the_memory_was_disposed_fails_cleanly()
    {
        var h = new QueueHarness();
        h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 8));
        h.Driver.Publish();
        DescriptorChain chain = h.Pop();
        h.Dispose();
        Assert.False(chain.TryNext(out _, out QueueError error));
        Assert.Equal(QueueError.MemoryDisposed, error);
        Assert.False(h.Queue.TryPopChain(h.Memory, out _, out error));
        Assert.Equal(QueueError.MemoryDisposed, error);
        Assert.Equal(QueueError.MemoryDisposed, h.Queue.AddUsed(h.Memory, 0, 0));
    }

    [Fact]
    public void Descriptor_values_compare_and_format()
    {
        var a = new Descriptor(At(0x1000), 16, DescriptorFlags.Next | DescriptorFlags.Write, 3);
        var b = new Descriptor(At(0x1000), 16, DescriptorFlags.Next | DescriptorFlags.Write, 3);
        Assert.True(a == b);
        Assert.False(a != b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, new Descriptor(At(0x1000), 16, DescriptorFlags.Next, 3));
        Assert.True(a.HasNext && a.IsWriteOnly && !a.IsIndirect);
        Assert.Equal("{0x1000, 16, Next, Write, next 3}", a.ToString());
        Assert.Equal(16, System.Runtime.CompilerServices.Unsafe.SizeOf<Descriptor>());
    }
}
