using Virtio.Memory;
using Virtio.Queue.Testing;

namespace Virtio.Queue.Tests;

/// <summary>A guest memory, a queue laid out at 0, a driver and a configured device queue.</summary>
internal sealed class QueueHarness : IDisposable
{
    public const ulong BufferBase = 0x10000;

    public QueueHarness(ushort size = 16, bool eventIdx = false, bool indirect = true, GuestMemory? memory = null)
    {
        Memory = memory ?? GuestMemory.CreateAnonymous(new GuestAddress(0), 0x100000);
        Layout = QueueLayout.At(new GuestAddress(0), size);
        Driver = new TestDriver(Memory, Layout, eventIdx, indirect);
        Queue = new VirtQueue(256);
        Driver.Configure(Queue);
    }

    public GuestMemory Memory { get; }

    public QueueLayout Layout { get; }

    public TestDriver Driver { get; }

    public VirtQueue Queue { get; }

    public static GuestAddress At(ulong address) => new(address);

    public DescriptorChain Pop()
    {
        Assert.True(Queue.TryPopChain(Memory, out DescriptorChain chain, out QueueError error), $"no chain popped: {error.Describe()}");
        Assert.Equal(QueueError.None, error);
        return chain;
    }

    /// <summary>Walks a chain to its end; returns the descriptors and the final error.</summary>
    public static (List<Descriptor> Descriptors, QueueError Error) Walk(DescriptorChain chain)
    {
        var list = new List<Descriptor>();
        QueueError error;
        while (chain.TryNext(out Descriptor descriptor, out error))
        {
            list.Add(descriptor);
            Assert.True(list.Count <= 32769, "chain walk did not terminate");
        }

        return (list, error);
    }

    /// <summary>Publishes one raw head and pops it.</summary>
    public DescriptorChain PublishAndPop(ushort head)
    {
        Driver.PushAvail(head);
        Driver.Publish();
        return Pop();
    }

    /// <summary>Publishes one raw head, pops it and walks it.</summary>
    public (List<Descriptor> Descriptors, QueueError Error) PublishPopWalk(ushort head) => Walk(PublishAndPop(head));

    public void Dispose() => Memory.Dispose();
}
