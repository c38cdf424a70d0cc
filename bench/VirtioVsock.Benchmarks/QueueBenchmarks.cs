using BenchmarkDotNet.Attributes;
using Virtio.Memory;
using Virtio.Queue;
using Virtio.Queue.Testing;

namespace VirtioVsock.Benchmarks;

/// <summary>
/// The split-virtqueue data path, the same workload as rust-vmm virtio-queue's reference benchmark:
/// a 256-entry queue in 16 MiB of guest memory (descriptor table at 0x0, available ring at 0x1000, used
/// ring at 0x2000), 128 two-descriptor chains ({B, 44} readable + {B + 0x1000, 4096} writable, chain k at
/// B = 0x10_0000 + k * 0x2000) published in one batch, then 128 x (pop chain + walk its descriptors + add used).
/// Results are per chain (OperationsPerInvoke = 128).
/// </summary>
/// <remarks>
/// The chains are written once. The available ring holds the 128 heads twice over (slots k and k + 128), so
/// each invocation "publishes" the next batch with a single <c>avail.idx</c> store (the driver's only cost,
/// measured with the rest, ~0.01 ns per chain), and the device pops exactly the same chains every time.
/// </remarks>
[MemoryDiagnoser]
public class QueueBenchmarks
{
    private const int Chains = 128;
    private const ushort QueueSize = 256;

    private GuestMemory _memory = null!;
    private TestDriver _driver = null!;
    private VirtQueue _queue = null!;

    /// <summary>Builds the memory, the queue and the 128 chains.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _memory = GuestMemory.CreateAnonymous(new GuestAddress(0), 16 << 20);
        var layout = new QueueLayout(QueueSize, new GuestAddress(0x0), new GuestAddress(0x1000), new GuestAddress(0x2000));
        _driver = new TestDriver(_memory, layout);
        _queue = new VirtQueue(QueueSize);
        _driver.Configure(_queue);
        for (int k = 0; k < Chains; k++)
        {
            ulong b = 0x10_0000 + ((ulong)k * 0x2000);
            ushort head = _driver.AddChain(TestBuffer.DeviceReadable(b, 44), TestBuffer.DeviceWritable(b + 0x1000, 4096));
            _driver.WriteAvailEntry((ushort)(k + Chains), head);
        }

        _driver.SetAvailIndex(0);
        QueueError error = _queue.Validate(_memory);
        if (error != QueueError.None)
        {
            throw new InvalidOperationException(error.Describe());
        }
    }

    /// <summary>Releases the guest memory.</summary>
    [GlobalCleanup]
    public void Cleanup() => _memory.Dispose();

    /// <summary>Pop, walk both descriptors, add used (one release store of used.idx per chain).</summary>
    /// <returns>The bytes seen, so nothing is optimized away.</returns>
    [Benchmark(Baseline = true, OperationsPerInvoke = Chains)]
    public ulong PopIterateAddUsed()
    {
        GuestMemory memory = _memory;
        VirtQueue queue = _queue;
        _driver.SetAvailIndex((ushort)(_driver.AvailIndex + Chains));
        ulong total = 0;
        while (queue.TryPopChain(memory, out DescriptorChain chain, out _))
        {
            uint written = 0;
            while (chain.TryNext(out Descriptor descriptor, out _))
            {
                total += descriptor.Length;
                if (descriptor.IsWriteOnly)
                {
                    written += descriptor.Length;
                }
            }

            queue.AddUsed(memory, chain.HeadIndex, written);
        }

        return total;
    }

    /// <summary>The same with used elements batched: one release store of used.idx per 128 chains.</summary>
    /// <returns>The bytes seen, so nothing is optimized away.</returns>
    [Benchmark(OperationsPerInvoke = Chains)]
    public ulong PopIterateAddUsedBatched()
    {
        GuestMemory memory = _memory;
        VirtQueue queue = _queue;
        _driver.SetAvailIndex((ushort)(_driver.AvailIndex + Chains));
        ulong total = 0;
        while (queue.TryPopChain(memory, out DescriptorChain chain, out _))
        {
            uint written = 0;
            while (chain.TryNext(out Descriptor descriptor, out _))
            {
                total += descriptor.Length;
                if (descriptor.IsWriteOnly)
                {
                    written += descriptor.Length;
                }
            }

            queue.AddUsedDeferred(memory, chain.HeadIndex, written);
        }

        queue.PublishUsed(memory);
        return total;
    }
}
