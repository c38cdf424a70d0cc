using Virtio.Memory;
using Virtio.Queue.Testing;

namespace Virtio.Queue.Tests.Notifications;

public sealed class NotificationTests
{
    [Theory]
    // event, new, old, expected: notify iff event lies in [old, new) modulo 2^16
    [InlineData(0x0000, 0x0001, 0x0000, true)]
    [InlineData(0x0001, 0x0001, 0x0000, false)]
    [InlineData(0x0005, 0x0005, 0x0005, false)] // no progress
    [InlineData(0x0003, 0x000a, 0x0000, true)]
    [InlineData(0x000a, 0x000a, 0x0000, false)]
    [InlineData(0xffff, 0x0000, 0xfffe, true)] // 0xfffe -> 0x0000 passes 0xffff
    [InlineData(0xfffe, 0x0000, 0xfffe, true)]
    [InlineData(0x0000, 0x0000, 0xfffe, false)] // 0x0000 not yet reached
    [InlineData(0x0000, 0x0001, 0xffff, true)] // across the wrap
    [InlineData(0xfffe, 0x0001, 0xffff, false)] // event behind old
    [InlineData(0x7fff, 0x8000, 0x7fff, true)]
    [InlineData(0x1233, 0x1234, 0x1235, true)] // almost a full circle: every index but new itself
    [InlineData(0x1234, 0x1234, 0x1235, false)]
    public void The_event_index_formula_handles_u16_wrap_around(int eventIndex, int newIndex, int oldIndex, bool expected)
    {
        Assert.Equal(expected, EventIndex.NeedsEvent((ushort)eventIndex, (ushort)newIndex, (ushort)oldIndex));
    }

    [Fact]
    public void With_event_idx_the_device_notifies_when_used_idx_passes_used_event_across_the_wrap()
    {
        using var h = new QueueHarness(eventIdx: true);
        h.Queue.NextUsed = 0xfffe;
        h.Driver.UsedEvent = 0xffff;
        Assert.True(h.Queue.NeedsNotification(h.Memory)); // first decision after (re)start: notify

        Assert.Equal(QueueError.None, h.Queue.AddUsed(h.Memory, 0, 0)); // 0xfffe -> 0xffff
        Assert.False(h.Queue.NeedsNotification(h.Memory));
        Assert.Equal(QueueError.None, h.Queue.AddUsed(h.Memory, 1, 0)); // 0xffff -> 0x0000 (passes 0xffff)
        Assert.True(h.Queue.NeedsNotification(h.Memory));
        Assert.Equal(QueueError.None, h.Queue.AddUsed(h.Memory, 2, 0)); // 0x0000 -> 0x0001
        Assert.False(h.Queue.NeedsNotification(h.Memory));

        h.Driver.UsedEvent = 0x0002;
        Assert.Equal(QueueError.None, h.Queue.AddUsed(h.Memory, 3, 0)); // -> 2
        Assert.False(h.Queue.NeedsNotification(h.Memory));
        Assert.Equal(QueueError.None, h.Queue.AddUsed(h.Memory, 4, 0));
        Assert.Equal(QueueError.None, h.Queue.AddUsed(h.Memory, 5, 0)); // 2 -> 4 passes 2
        Assert.True(h.Queue.NeedsNotification(h.Memory));
        Assert.False(h.Queue.NeedsNotification(h.Memory)); // nothing new
    }

    [Fact]
    public void The_driver_side_indices_can_be_watched_published_used_and_used_event()
    {
        using var h = new QueueHarness(eventIdx: true);
        h.Driver.UsedEvent = 0x1234;
        Assert.True(h.Queue.TryReadUsedEvent(h.Memory, out ushort usedEvent));
        Assert.Equal(0x1234, usedEvent);

        Assert.Equal(QueueError.None, h.Queue.AddUsedDeferred(h.Memory, 0, 0));
        Assert.Equal(0, h.Queue.PublishedUsed); // written, not yet published
        Assert.Equal(QueueError.None, h.Queue.PublishUsed(h.Memory));
        Assert.Equal(1, h.Queue.PublishedUsed);
        Assert.Equal(1, h.Driver.UsedIndex);

        using var plain = new QueueHarness(eventIdx: false);
        Assert.False(plain.Queue.TryReadUsedEvent(plain.Memory, out ushort none)); // no used_event without EVENT_IDX
        Assert.Equal(0, none);
    }

    [Fact]
    public void With_event_idx_the_no_interrupt_flag_is_ignored()
    {
        using var h = new QueueHarness(eventIdx: true);
        h.Driver.NoInterrupt = true;
        h.Driver.UsedEvent = 0;
        h.Queue.NeedsNotification(h.Memory);
        h.Queue.AddUsed(h.Memory, 0, 0);
        Assert.True(h.Queue.NeedsNotification(h.Memory));
    }

    [Fact]
    public void Needs_notification_looks_at_published_used_elements_only()
    {
        using var h = new QueueHarness(eventIdx: true);
        h.Driver.UsedEvent = 0;
        h.Queue.NeedsNotification(h.Memory);
        h.Queue.AddUsedDeferred(h.Memory, 0, 0);
        Assert.False(h.Queue.NeedsNotification(h.Memory));
        h.Queue.PublishUsed(h.Memory);
        Assert.True(h.Queue.NeedsNotification(h.Memory));
    }

    [Fact]
    public void Setting_next_used_restarts_event_suppression()
    {
        using var h = new QueueHarness(eventIdx: true);
        h.Driver.UsedEvent = 100;
        h.Queue.NeedsNotification(h.Memory);
        Assert.False(h.Queue.NeedsNotification(h.Memory));
        h.Queue.NextUsed = 5;
        Assert.True(h.Queue.NeedsNotification(h.Memory));
    }

    [Fact]
    public void Without_event_idx_the_no_interrupt_flag_decides()
    {
        using var h = new QueueHarness(eventIdx: false);
        h.Queue.AddUsed(h.Memory, 0, 0);
        Assert.True(h.Queue.NeedsNotification(h.Memory));
        h.Driver.NoInterrupt = true;
        Assert.False(h.Queue.NeedsNotification(h.Memory));
        h.Driver.NoInterrupt = false;
        Assert.True(h.Queue.NeedsNotification(h.Memory));
    }

    [Fact]
    public void Without_event_idx_disable_and_enable_toggle_no_notify()
    {
        using var h = new QueueHarness(eventIdx: false);
        Assert.False(h.Driver.NoNotify);
        Assert.True(h.Driver.KickNeeded());
        Assert.Equal(QueueError.None, h.Queue.DisableNotification(h.Memory));
        Assert.True(h.Driver.NoNotify);
        h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 1));
        h.Driver.Publish();
        Assert.False(h.Driver.KickNeeded());
        Assert.Equal(QueueError.None, h.Queue.EnableNotification(h.Memory, out bool hasMore));
        Assert.False(h.Driver.NoNotify);
        Assert.True(hasMore); // the chain published while notifications were off
    }

    [Fact]
    public void With_event_idx_enable_writes_avail_event_and_rechecks()
    {
        using var h = new QueueHarness(eventIdx: true);
        Assert.Equal(QueueError.None, h.Queue.EnableNotification(h.Memory, out bool hasMore));
        Assert.False(hasMore);
        Assert.Equal(0, h.Driver.AvailEvent);

        h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 1));
        h.Driver.Publish();
        Assert.True(h.Driver.KickNeeded()); // 0 -> 1 passes avail_event 0
        h.Queue.TryPopChain(h.Memory, out _, out _);

        // The device does not re-enable: the next chain needs no kick.
        h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 1));
        h.Driver.Publish();
        Assert.False(h.Driver.KickNeeded());

        // Re-enabling finds the chain the driver added meanwhile.
        Assert.Equal(QueueError.None, h.Queue.EnableNotification(h.Memory, out hasMore));
        Assert.True(hasMore);
        Assert.Equal(1, h.Driver.AvailEvent);
        Assert.False(h.Driver.NoNotify);
    }

    [Fact]
    public void With_event_idx_disable_writes_nothing()
    {
        using var h = new QueueHarness(eventIdx: true);
        Assert.Equal(QueueError.None, h.Queue.DisableNotification(h.Memory));
        Assert.False(h.Driver.NoNotify);
    }

    [Fact]
    public void Avail_event_kicks_across_the_u16_wrap()
    {
        using var h = new QueueHarness(eventIdx: true);
        h.Driver.SetAvailIndex(0xffff);
        h.Queue.NextAvail = 0xffff;
        h.Driver.KickNeeded();
        Assert.Equal(QueueError.None, h.Queue.EnableNotification(h.Memory, out bool hasMore));
        Assert.False(hasMore);
        Assert.Equal(0xffff, h.Driver.AvailEvent);
        h.Driver.AddChain(TestBuffer.DeviceReadable(0x10000, 1)); // 0xffff -> 0x0000
        h.Driver.Publish();
        Assert.True(h.Driver.KickNeeded());
        Assert.True(h.Queue.TryPopChain(h.Memory, out _, out _));
        Assert.Equal(0, h.Queue.NextAvail);
    }

    [Fact]
    public void Driver_interrupt_suppression_round_trips_through_the_device()
    {
        using var h = new QueueHarness(eventIdx: true);
        h.Driver.AddChain(TestBuffer.DeviceWritable(0x10000, 8));
        h.Driver.AddChain(TestBuffer.DeviceWritable(0x10000, 8));
        h.Driver.Publish();
        h.Driver.DisableInterrupts();
        h.Queue.NeedsNotification(h.Memory);
        h.Queue.AddUsed(h.Memory, h.Pop().HeadIndex, 8);
        Assert.False(h.Queue.NeedsNotification(h.Memory));
        Assert.True(h.Driver.EnableInterrupts()); // one used element is already pending
        Assert.True(h.Driver.TryTakeUsed(out _));
        Assert.False(h.Driver.EnableInterrupts());
        h.Queue.AddUsed(h.Memory, h.Pop().HeadIndex, 8);
        Assert.True(h.Queue.NeedsNotification(h.Memory));
    }

    [Fact]
    public void Needs_notification_with_a_bad_configuration_answers_yes()
    {
        using GuestMemory memory = GuestMemory.CreateAnonymous(new GuestAddress(0), 0x1000);
        var queue = new VirtQueue(4) { Ready = false };
        Assert.True(queue.NeedsNotification(memory));
    }
}
