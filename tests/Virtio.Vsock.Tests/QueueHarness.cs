using Virtio.Memory;
using Virtio.Queue;
using Virtio.Queue.Testing;

namespace Virtio.Vsock.Tests;

/// <summary>Guest memory with a 256-entry queue at 0 and a driver, to hand descriptor chains to the parser.</summary>
internal sealed class QueueHarness : IDisposable
{
    public const uint MaxData = 64 * 1024;

    private QueueHarness(GuestMemory memory)
    {
        Memory = memory;
        Queue = new VirtQueue(256);
        Driver = new TestDriver(memory, QueueLayout.At(new GuestAddress(0), 256));
        Driver.Configure(Queue);
    }

    public GuestMemory Memory { get; }

    public VirtQueue Queue { get; }

    public TestDriver Driver { get; }

    /// <summary>16 MiB of one region at 0.</summary>
    public static QueueHarness Create() => new(GuestMemory.CreateAnonymous(new GuestAddress(0), 16 << 20));

    /// <summary>16 MiB made of adjacent regions split at <paramref name="boundaries"/>.</summary>
    public static QueueHarness WithRegionBoundaries(params ulong[] boundaries)
    {
        var starts = new List<ulong> { 0 };
        starts.AddRange(boundaries.Where(b => b > 0 && b < (16 << 20)).Distinct().Order());
        var regions = new List<GuestRegion>();
        for (int i = 0; i < starts.Count; i++)
        {
            ulong end = i + 1 < starts.Count ? starts[i + 1] : 16 << 20;
            regions.Add(GuestRegion.CreateAnonymous(new GuestAddress(starts[i]), end - starts[i]));
        }

        var memory = GuestMemory.Create(regions.ToArray());
        regions.ForEach(r => r.Dispose());
        return new QueueHarness(memory);
    }

    /// <summary>Publishes a chain of <paramref name="buffers"/> and pops it on the device side.</summary>
    public DescriptorChain Chain(params TestBuffer[] buffers)
    {
        Driver.AddChain(buffers);
        Driver.Publish();
        Assert.True(Queue.TryPopChain(Memory, out DescriptorChain chain, out QueueError error), error.Describe());
        return chain;
    }

    public static TestBuffer R(ulong address, uint length) => TestBuffer.DeviceReadable(address, length);

    public static TestBuffer W(ulong address, uint length) => TestBuffer.DeviceWritable(address, length);

    public void Dispose() => Memory.Dispose();
}
