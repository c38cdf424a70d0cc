using CsCheck;
using Virtio.Memory;
using Virtio.Queue.Testing;

namespace Virtio.Queue.Tests.Properties;

/// <summary>
/// Random garbage in the descriptor table, the available ring and indirect tables never makes the device
/// throw or loop, and every descriptor it hands out lies inside guest memory.
/// </summary>
public sealed class GarbageRingProperties
{
    // Memory: [0, 0x40000) + [0x40000, 0x80000) adjacent, a hole, then [0x90000, 0xa0000).
    // Indirect garbage tables straddle the 0x40000 boundary so the slow path gets exercised too.
    private const ulong IndirectArea = 0x40000 - 0x200;
    private const int IndirectEntries = 64;

    private static readonly Gen<ulong> GenAddress = Gen.Frequency(
        (4, Gen.Int[0, 0xa0000].Select(a => (ulong)a)),
        (2, Gen.Int[0, IndirectEntries - 1].Select(i => IndirectArea + ((ulong)i * 16))),
        (1, Gen.ULong),
        (1, Gen.Int[0, 0x1000].Select(a => ulong.MaxValue - (ulong)a)),
        (1, Gen.Int[0x7ff00, 0x90100].Select(a => (ulong)a)));

    private static readonly Gen<uint> GenLength = Gen.Frequency(
        (4, Gen.UInt[0, 0x2000]),
        (2, Gen.Int[0, 40].Select(n => (uint)n * 16)),
        (1, Gen.UInt));

    private static readonly Gen<ushort> GenFlags = Gen.Frequency(
        (6, Gen.UShort[0, 7]),
        (1, Gen.UShort));

    private static readonly Gen<ushort> GenNext = Gen.Frequency(
        (6, Gen.UShort[0, 40]),
        (1, Gen.UShort));

    private static readonly Gen<Descriptor> GenDescriptor = Gen.Select(
        GenAddress, GenLength, GenFlags, GenNext,
        (address, length, flags, next) => new Descriptor(new GuestAddress(address), length, (DescriptorFlags)flags, next));

    private static readonly Gen<(int SizeLog2, Descriptor[] Table, Descriptor[] Indirect, ushort[] Avail, int AvailIndex, int Features)> GenRing =
        from sizeLog2 in Gen.Int[0, 5]
        let size = 1 << sizeLog2
        from table in GenDescriptor.Array[size]
        from indirect in GenDescriptor.Array[IndirectEntries]
        from avail in Gen.Frequency((4, Gen.UShort[0, (ushort)(size + 1)]), (1, Gen.UShort)).Array[size]
        from availIndex in Gen.Frequency((4, Gen.Int[0, size]), (1, Gen.Int[0, 0xffff]))
        from features in Gen.Int[0, 3]
        select (sizeLog2, table, indirect, avail, availIndex, features);

    [Fact]
    public void Garbage_never_crashes_hangs_or_escapes_guest_memory()
    {
        GenRing.Sample(g =>
        {
            using GuestRegion a = GuestRegion.CreateAnonymous(new GuestAddress(0), 0x40000);
            using GuestRegion b = GuestRegion.CreateAnonymous(new GuestAddress(0x40000), 0x40000);
            using GuestRegion c = GuestRegion.CreateAnonymous(new GuestAddress(0x90000), 0x10000);
            using GuestMemory memory = GuestMemory.Create(a, b, c);
            ushort size = (ushort)(1 << g.SizeLog2);
            var driver = new TestDriver(memory, QueueLayout.At(new GuestAddress(0x1000), size), eventIdx: (g.Features & 1) != 0, indirectDescriptors: (g.Features & 2) != 0);
            var queue = new VirtQueue(32);
            driver.Configure(queue);
            for (ushort i = 0; i < size; i++)
            {
                driver.WriteDescriptor(i, g.Table[i]);
                driver.WriteAvailEntry(i, g.Avail[i]);
            }

            for (int i = 0; i < IndirectEntries; i++)
            {
                Descriptor d = g.Indirect[i];
                driver.WriteTableDescriptor(new GuestAddress(IndirectArea), i, d.Address, d.Length, d.Flags, d.Next);
            }

            driver.SetAvailIndex((ushort)g.AvailIndex);
            Exercise(memory, queue, driver.Layout, g.AvailIndex);
        }, iter: 1000);
    }

    private static void Exercise(GuestMemory memory, VirtQueue queue, QueueLayout layout, int availIndex)
    {
        ushort size = layout.Size;
        bool ringsOverwritten = false; // the device may legitimately scribble over the rings: the guest said so
        int pops = 0;
        while (true)
        {
            bool popped = queue.TryPopChain(memory, out DescriptorChain chain, out QueueError error);
            if (!popped)
            {
                if (ringsOverwritten)
                {
                    Assert.True(error is QueueError.None or QueueError.AvailIndexInvalid, error.Describe());
                }
                else if (availIndex > size)
                {
                    Assert.Equal(QueueError.AvailIndexInvalid, error);
                }
                else
                {
                    Assert.Equal(QueueError.None, error);
                    Assert.Equal(availIndex, pops);
                }

                break;
            }

            Assert.True(++pops <= (ringsOverwritten ? 4 * size : size), "popped more chains than the ring holds");
            int count = 0;
            while (chain.TryNext(out Descriptor d, out error))
            {
                Assert.True(++count <= size, "a chain yielded more descriptors than the queue size");
                Assert.False(d.IsIndirect);
                Assert.Equal(MemoryError.None, memory.CheckRange(d.Address, d.Length));
                ringsOverwritten |= d.IsWriteOnly && d.Length > 0 && d.Address < layout.End
                    && (d.Address >= layout.Start || layout.Start.Value - d.Address.Value < d.Length);
                if (d.IsWriteOnly)
                {
                    // The device writes every writable buffer it was handed, wherever the guest aimed it.
                    Assert.Equal(MemoryError.None, memory.Fill(d.Address, d.Length, 0x5a));
                }
            }

            QueueError used = queue.AddUsed(memory, chain.HeadIndex, 0);
            Assert.Equal(chain.HeadIndex < size ? QueueError.None : QueueError.HeadIndexOutOfRange, used);
        }

        queue.NeedsNotification(memory);
        queue.EnableNotification(memory, out _);
        queue.DisableNotification(memory);
    }
}
