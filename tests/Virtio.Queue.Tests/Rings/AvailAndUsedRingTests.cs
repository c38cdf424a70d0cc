using Virtio.Memory;
using Virtio.Queue.Testing;
using static Virtio.Queue.Tests.QueueHarness;

namespace Virtio.Queue.Tests.Rings;

public sealed class AvailAndUsedRingTests : IDisposable
{
    private readonly QueueHarness _h = new(size: 8);

    public void Dispose() => _h.Dispose();

    [Fact]
    public void Chains_pop_in_publication_order_and_used_elements_come_back()
    {
        var heads = new List<ushort>();
        for (int i = 0; i < 4; i++)
        {
            heads.Add(_h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000 + (ulong)i, 1), TestBuffer.DeviceWritable(0x11000, 100)));
        }

        _h.Driver.Publish();
        for (int i = 0; i < 4; i++)
        {
            DescriptorChain chain = _h.Pop();
            Assert.Equal(heads[i], chain.HeadIndex);
            Assert.Equal(QueueError.None, _h.Queue.AddUsed(_h.Memory, chain.HeadIndex, (uint)(10 + i)));
        }

        Assert.False(_h.Queue.TryPopChain(_h.Memory, out _, out QueueError error));
        Assert.Equal(QueueError.None, error);
        for (int i = 0; i < 4; i++)
        {
            Assert.True(_h.Driver.TryTakeUsed(out UsedElement used));
            Assert.Equal(new UsedElement(heads[i], (uint)(10 + i)), used);
        }

        Assert.False(_h.Driver.TryTakeUsed(out _));
        Assert.Equal(8, _h.Driver.FreeDescriptors);
    }

    [Fact]
    public void Unpublished_chains_are_invisible()
    {
        _h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 1));
        Assert.False(_h.Queue.HasAvailable(_h.Memory));
        Assert.False(_h.Queue.TryPopChain(_h.Memory, out _, out _));
        _h.Driver.Publish();
        Assert.True(_h.Queue.TryPopChain(_h.Memory, out _, out _));
    }

    [Fact]
    public void Chains_published_after_the_device_caught_up_are_seen()
    {
        _h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 1));
        _h.Driver.Publish();
        _h.Pop();
        Assert.False(_h.Queue.TryPopChain(_h.Memory, out _, out _));
        _h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 1));
        _h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 1));
        _h.Driver.Publish();
        _h.Pop();
        _h.Pop();
        Assert.Equal(3, _h.Queue.NextAvail);
    }

    [Theory]
    [InlineData(9)]
    [InlineData(0x8000)]
    [InlineData(0xffff)]
    public void An_avail_index_more_than_the_size_ahead_is_a_ring_error(int availIndex)
    {
        _h.Driver.SetAvailIndex((ushort)availIndex);
        Assert.True(_h.Queue.HasAvailable(_h.Memory));
        Assert.False(_h.Queue.TryPopChain(_h.Memory, out _, out QueueError error));
        Assert.Equal(QueueError.AvailIndexInvalid, error);
        Assert.False(_h.Queue.TryPopChain(_h.Memory, out _, out error));
        Assert.Equal(QueueError.AvailIndexInvalid, error);
        Assert.Equal(0, _h.Queue.NextAvail);
    }

    [Fact]
    public void An_avail_index_exactly_the_size_ahead_is_accepted()
    {
        _h.Driver.SetAvailIndex(8);
        for (int i = 0; i < 8; i++)
        {
            Assert.True(_h.Queue.TryPopChain(_h.Memory, out _, out QueueError error));
            Assert.Equal(QueueError.None, error);
        }

        Assert.False(_h.Queue.TryPopChain(_h.Memory, out _, out QueueError end));
        Assert.Equal(QueueError.None, end);
    }

    [Fact]
    public void Indices_wrap_around_at_the_u16_boundary()
    {
        _h.Queue.NextAvail = 0xfffe;
        _h.Queue.NextUsed = 0xfffe;
        _h.Driver.SetAvailIndex(0xfffe);
        _h.Driver.ResetFreeList();
        // Raw used index starts where the device's does.
        _h.Memory.WriteU16(_h.Layout.UsedRing.CheckedAdd(2), 0xfffe).ThrowIfError(_h.Layout.UsedRing);
        for (int round = 0; round < 4; round++)
        {
            ushort head = _h.Driver.AddChain(TestBuffer.DeviceWritable(0x10000, 16));
            _h.Driver.Publish();
            DescriptorChain chain = _h.Pop();
            Assert.Equal(head, chain.HeadIndex);
            Assert.Equal(QueueError.None, _h.Queue.AddUsed(_h.Memory, head, 16));
        }

        Assert.Equal(2, _h.Queue.NextAvail);
        Assert.Equal(2, _h.Queue.NextUsed);
        Assert.Equal(2, _h.Driver.UsedIndex);
    }

    [Fact]
    public void Used_elements_land_in_the_slot_of_next_used_modulo_size()
    {
        _h.Queue.NextUsed = 13; // slot 5
        Assert.Equal(QueueError.None, _h.Queue.AddUsed(_h.Memory, 3, 0x1234_5678));
        Assert.Equal(new UsedElement(3, 0x1234_5678), _h.Driver.ReadUsedElement(5));
        Assert.Equal(14, _h.Driver.UsedIndex);
    }

    [Fact]
    public void Deferred_used_elements_become_visible_on_publish()
    {
        _h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 1));
        _h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 1));
        _h.Driver.Publish();
        DescriptorChain a = _h.Pop();
        DescriptorChain b = _h.Pop();
        Assert.Equal(QueueError.None, _h.Queue.AddUsedDeferred(_h.Memory, a.HeadIndex, 1));
        Assert.Equal(QueueError.None, _h.Queue.AddUsedDeferred(_h.Memory, b.HeadIndex, 2));
        Assert.Equal(2, _h.Queue.PendingUsed);
        Assert.Equal(2, _h.Queue.NextUsed);
        Assert.Equal(0, _h.Driver.UsedIndex);
        Assert.False(_h.Driver.TryTakeUsed(out _));
        Assert.Equal(QueueError.None, _h.Queue.PublishUsed(_h.Memory));
        Assert.Equal(0, _h.Queue.PendingUsed);
        Assert.True(_h.Driver.TryTakeUsed(out UsedElement first));
        Assert.True(_h.Driver.TryTakeUsed(out UsedElement second));
        Assert.Equal((new UsedElement(a.HeadIndex, 1), new UsedElement(b.HeadIndex, 2)), (first, second));
    }

    [Fact]
    public void A_used_head_out_of_range_is_refused_and_nothing_is_written()
    {
        Assert.Equal(QueueError.HeadIndexOutOfRange, _h.Queue.AddUsed(_h.Memory, 8, 0));
        Assert.Equal(QueueError.HeadIndexOutOfRange, _h.Queue.AddUsedDeferred(_h.Memory, 0xffff, 0));
        Assert.Equal(0, _h.Queue.NextUsed);
        Assert.Equal(0, _h.Driver.UsedIndex);
    }

    [Fact]
    public void Next_avail_and_next_used_can_be_restored()
    {
        // vhost-user SET_VRING_BASE after the driver has already published 5 chains.
        for (int i = 0; i < 5; i++)
        {
            _h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, (uint)i + 1));
        }

        _h.Driver.Publish();
        _h.Queue.NextAvail = 3;
        _h.Queue.NextUsed = 3;
        Assert.Equal(3, _h.Queue.NextAvail);
        Assert.Equal(3, _h.Queue.NextUsed);
        DescriptorChain chain = _h.Pop();
        Assert.True(chain.TryNext(out Descriptor d, out _));
        Assert.Equal(4u, d.Length);
        Assert.Equal(QueueError.None, _h.Queue.AddUsed(_h.Memory, chain.HeadIndex, 0));
        Assert.Equal(4, _h.Driver.UsedIndex);
        _h.Pop();
        Assert.False(_h.Queue.TryPopChain(_h.Memory, out _, out _));
    }

    [Fact]
    public void Setting_next_avail_discards_the_cached_avail_index()
    {
        for (int i = 0; i < 3; i++)
        {
            _h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 1));
        }

        _h.Driver.Publish();
        _h.Pop(); // caches avail.idx = 3
        _h.Queue.NextAvail = 0;
        Assert.Equal(0, _h.Pop().HeadIndex);
        _h.Queue.NextAvail = 3;
        Assert.False(_h.Queue.TryPopChain(_h.Memory, out _, out _));
    }

    [Fact]
    public void Reset_returns_the_queue_to_its_initial_state()
    {
        _h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 1));
        _h.Driver.Publish();
        _h.Queue.AddUsed(_h.Memory, _h.Pop().HeadIndex, 0);
        _h.Queue.Reset();
        Assert.Equal((256, 0, 0, false, false, false), (_h.Queue.Size, _h.Queue.NextAvail, _h.Queue.NextUsed, _h.Queue.Ready, _h.Queue.EventIdx, _h.Queue.IndirectDescriptors));
        Assert.Equal((0UL, 0UL, 0UL), (_h.Queue.DescriptorTable.Value, _h.Queue.AvailRing.Value, _h.Queue.UsedRing.Value));
        Assert.False(_h.Queue.TryPopChain(_h.Memory, out _, out QueueError error));
        Assert.Equal(QueueError.NotReady, error);
        Assert.Equal(QueueError.NotReady, _h.Queue.Validate(_h.Memory));
    }

    [Fact]
    public void A_reconfigured_queue_uses_the_new_rings()
    {
        _h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 1));
        _h.Driver.Publish();
        _h.Pop();
        var other = new TestDriver(_h.Memory, QueueLayout.At(At(0x8000), 4));
        _h.Queue.Reset();
        other.Configure(_h.Queue);
        ushort head = other.AddChain(TestBuffer.DeviceReadable(0x10000, 7));
        other.Publish();
        DescriptorChain chain = _h.Pop();
        Assert.Equal(head, chain.HeadIndex);
        Assert.True(chain.TryNext(out Descriptor d, out _));
        Assert.Equal(7u, d.Length);
    }

    [Fact]
    public void A_new_memory_instance_is_picked_up()
    {
        using GuestRegion region = GuestRegion.CreateAnonymous(At(0), 0x100000);
        using GuestMemory first = GuestMemory.Create(region);
        using GuestMemory second = GuestMemory.Create(region);
        var driver = new TestDriver(first, QueueLayout.At(At(0), 8));
        var queue = new VirtQueue(8);
        driver.Configure(queue);
        driver.AddChain(TestBuffer.DeviceReadable(0x10000, 1));
        driver.AddChain(TestBuffer.DeviceReadable(0x10000, 2));
        driver.Publish();
        Assert.True(queue.TryPopChain(first, out _, out _));
        first.Dispose();
        Assert.True(queue.TryPopChain(second, out DescriptorChain chain, out QueueError error), error.Describe());
        Assert.True(chain.TryNext(out Descriptor d, out _));
        Assert.Equal(2u, d.Length);
    }

    [Fact]
    public void Read_avail_index_reports_the_drivers_index()
    {
        _h.Driver.SetAvailIndex(5);
        Assert.Equal(QueueError.None, _h.Queue.ReadAvailIndex(_h.Memory, out ushort index));
        Assert.Equal(5, index);
    }
}
