using CsCheck;
using Virtio.Memory;
using Virtio.Queue.Testing;

namespace Virtio.Queue.Tests.Properties;

/// <summary>Random valid chains built by the test driver come out of the device queue exactly as built.</summary>
public sealed class ChainRoundTripProperties
{
    private const ulong IndirectTables = 0x80000;

    private static readonly Gen<TestBuffer> GenBuffer = Gen.Select(
        Gen.Int[0x10000, 0x7f000], Gen.Int[0, 4096], Gen.Bool,
        (address, length, writable) => new TestBuffer(new GuestAddress((ulong)address), (uint)length, writable));

    private static readonly Gen<(bool Indirect, TestBuffer[] Buffers)> GenChain =
        from indirect in Gen.Bool
        from buffers in GenBuffer.Array[1, indirect ? 16 : 4]
        select (indirect, buffers.OrderBy(b => b.Writable).ToArray()); // readable before writable

    private static readonly Gen<(int SizeLog2, (bool Indirect, TestBuffer[] Buffers)[] Chains, int StartIndex, bool EventIdx)> GenCase =
        Gen.Select(Gen.Int[4, 8], GenChain.Array[1, 4], Gen.Int[0, 0xffff], Gen.Bool);

    [Fact]
    public void Valid_chains_round_trip_exactly()
    {
        GenCase.Sample(c =>
        {
            using GuestMemory memory = GuestMemory.CreateAnonymous(new GuestAddress(0), 0x100000);
            ushort size = (ushort)(1 << c.SizeLog2);
            var driver = new TestDriver(memory, QueueLayout.At(new GuestAddress(0), size), c.EventIdx);
            var queue = new VirtQueue(256);
            driver.Configure(queue);

            // Start both sides at an arbitrary free-running index to cover u16 wrap-around.
            ushort start = (ushort)c.StartIndex;
            driver.SetAvailIndex(start);
            queue.NextAvail = start;

            var heads = new ushort[c.Chains.Length];
            for (int i = 0; i < c.Chains.Length; i++)
            {
                (bool indirect, TestBuffer[] buffers) = c.Chains[i];
                heads[i] = indirect
                    ? driver.AddIndirectChain(new GuestAddress(IndirectTables + ((ulong)i * 0x1000)), buffers)
                    : driver.AddChain(buffers);
            }

            driver.Publish();
            for (int i = 0; i < c.Chains.Length; i++)
            {
                Assert.True(queue.TryPopChain(memory, out DescriptorChain chain, out QueueError popError), popError.Describe());
                Assert.Equal(heads[i], chain.HeadIndex);
                TestBuffer[] expected = c.Chains[i].Buffers;
                int n = 0;
                ulong writable = 0;
                while (chain.TryNext(out Descriptor d, out QueueError error))
                {
                    Assert.Equal(QueueError.None, error);
                    Assert.True(n < expected.Length, "more descriptors than built");
                    Assert.Equal(expected[n].Address, d.Address);
                    Assert.Equal(expected[n].Length, d.Length);
                    Assert.Equal(expected[n].Writable, d.IsWriteOnly);
                    Assert.Equal(n < expected.Length - 1, d.HasNext);
                    Assert.False(d.IsIndirect);
                    writable += d.IsWriteOnly ? d.Length : 0;
                    n++;
                }

                Assert.Equal(QueueError.None, chain.Error);
                Assert.Equal(expected.Length, n);
                Assert.Equal(QueueError.None, queue.AddUsed(memory, chain.HeadIndex, (uint)writable));
            }

            Assert.False(queue.TryPopChain(memory, out _, out QueueError end));
            Assert.Equal(QueueError.None, end);
            for (int i = 0; i < c.Chains.Length; i++)
            {
                Assert.True(driver.TryTakeUsed(out UsedElement used));
                Assert.Equal(heads[i], (ushort)used.Id);
                Assert.Equal((uint)c.Chains[i].Buffers.Where(b => b.Writable).Sum(b => b.Length), used.Length);
            }

            Assert.Equal(size, driver.FreeDescriptors);
        }, iter: 300);
    }
}
