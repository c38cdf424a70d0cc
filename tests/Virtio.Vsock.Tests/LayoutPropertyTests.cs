using CsCheck;
using Virtio.Memory;
using Virtio.Queue;
using Virtio.Queue.Testing;
using static Virtio.Vsock.Tests.QueueHarness;

namespace Virtio.Vsock.Tests;

/// <summary>
/// Any way a driver may cut a packet into descriptors (1..16 of them, any split, across memory region
/// boundaries) parses to exactly the header and payload that were written.
/// </summary>
public sealed class LayoutPropertyTests
{
    private const ulong Area = 0x40_0000;

    /// <summary>Cuts <paramref name="total"/> bytes into <paramref name="pieces"/> lengths at the given cut points.</summary>
    private static uint[] Cut(int total, int[] cuts)
    {
        int[] points = cuts.Select(c => c % (total + 1)).Append(0).Append(total).Distinct().Order().ToArray();
        return points.Zip(points.Skip(1), (a, b) => (uint)(b - a)).ToArray();
    }

    /// <summary>Places each piece at a spaced-out address so pieces never touch (and often straddle a boundary).</summary>
    private static ulong[] Place(uint[] lengths, int[] gaps)
    {
        var addresses = new ulong[lengths.Length];
        ulong cursor = Area;
        for (int i = 0; i < lengths.Length; i++)
        {
            cursor += (ulong)(gaps[i % gaps.Length] % 0x3000);
            addresses[i] = cursor;
            cursor += lengths[i] + 16;
        }

        return addresses;
    }

    private static readonly Gen<(int Len, int[] Cuts, int[] Gaps, ulong[] Boundaries)> Layouts =
        Gen.Select(
            Gen.Int[0, 20000],
            Gen.Int[0, 70000].Array[0, 15],
            Gen.Int[0, 0x3000].Array[1, 16],
            Gen.ULong[Area, Area + 0x40000].Array[0, 4]);

    [Fact]
    public void Tx_packets_in_random_layouts_parse_to_what_was_written()
    {
        Layouts.Sample((len, cuts, gaps, boundaries) =>
        {
            using QueueHarness q = WithRegionBoundaries(boundaries);
            VsockHeader header = Samples.TxHeader with { Len = (uint)len };
            byte[] payload = Samples.Payload(len, len);
            byte[] stream = [.. Samples.Encode(header), .. payload];
            uint[] lengths = Cut(stream.Length, cuts);
            ulong[] addresses = Place(lengths, gaps);

            var buffers = new TestBuffer[lengths.Length];
            int offset = 0;
            for (int i = 0; i < lengths.Length; i++)
            {
                q.Memory.Write(new GuestAddress(addresses[i]), stream.AsSpan(offset, (int)lengths[i])).ThrowIfError(new GuestAddress(addresses[i]));
                buffers[i] = R(addresses[i], lengths[i]);
                offset += (int)lengths[i];
            }

            DescriptorChain chain = q.Chain(buffers);
            var packet = new VsockPacket();
            Assert.Equal(VsockPacketError.None, packet.TryParseTx(q.Memory, ref chain, MaxData));
            Assert.Equal(header, packet.Header);
            byte[] back = new byte[len];
            Assert.Equal(VsockPacketError.None, packet.CopyDataTo(back));
            Assert.Equal(payload, back);
            q.Queue.AddUsed(q.Memory, packet.HeadIndex, 0);
        }, iter: 200);
    }

    [Fact]
    public void Rx_packets_in_random_layouts_land_exactly_where_the_driver_expects()
    {
        Layouts.Sample((len, cuts, gaps, boundaries) =>
        {
            len = Math.Max(len, 1);
            using QueueHarness q = WithRegionBoundaries(boundaries);
            uint[] lengths = Cut(VsockHeader.Size + len, cuts);
            ulong[] addresses = Place(lengths, gaps);
            TestBuffer[] buffers = lengths.Select((l, i) => W(addresses[i], l)).ToArray();

            DescriptorChain chain = q.Chain(buffers);
            var packet = new VsockPacket();
            Assert.Equal(VsockPacketError.None, packet.TryParseRx(q.Memory, ref chain, MaxData));
            Assert.Equal(len, packet.DataCapacity);
            VsockHeader header = Samples.TxHeader with { Len = (uint)len, Op = VsockOp.Rw };
            byte[] payload = Samples.Payload(len, len + 7);
            packet.SetHeader(header);
            Assert.Equal(VsockPacketError.None, packet.CopyDataFrom(payload));

            // Read back what the driver sees: the concatenation of its buffers.
            byte[] seen = new byte[VsockHeader.Size + len];
            int offset = 0;
            for (int i = 0; i < lengths.Length; i++)
            {
                q.Memory.Read(new GuestAddress(addresses[i]), seen.AsSpan(offset, (int)lengths[i]));
                offset += (int)lengths[i];
            }

            Assert.Equal(header, VsockHeader.Read(seen));
            Assert.Equal(payload, seen.AsSpan(VsockHeader.Size).ToArray());
        }, iter: 200);
    }

    [Fact]
    public void Random_garbage_chains_never_throw_hang_or_leave_guest_memory()
    {
        Gen.Select(Gen.Byte.Array[16 * 16], Gen.UShort.Array[1, 8], Gen.Bool).Sample((table, heads, rx) =>
        {
            using QueueHarness q = Create();
            // Garbage descriptors, but aimed mostly at or near guest memory to reach deep paths.
            for (ushort i = 0; i < 16; i++)
            {
                ReadOnlySpan<byte> d = table.AsSpan(i * 16, 16);
                ulong address = d[0] % 4 == 0 ? BitConverter.ToUInt64(d) : (BitConverter.ToUInt64(d) % (17 << 20));
                uint length = d[8] % 3 == 0 ? BitConverter.ToUInt32(d[8..]) : BitConverter.ToUInt32(d[8..]) % 0x12000;
                var flags = (DescriptorFlags)(d[12] & 0x7);
                ushort next = (ushort)(d[14] % 20);
                q.Driver.WriteDescriptor(i, new GuestAddress(address), length, flags, next);
            }

            foreach (ushort head in heads)
            {
                q.Driver.PushAvail((ushort)(head % 20));
            }

            q.Driver.SetAvailIndex((ushort)heads.Length);
            var packet = new VsockPacket();
            int popped = 0;
            while (q.Queue.TryPopChain(q.Memory, out DescriptorChain chain, out _) && popped++ < 16)
            {
                VsockPacketError error = rx
                    ? packet.TryParseRx(q.Memory, ref chain, MaxData)
                    : packet.TryParseTx(q.Memory, ref chain, MaxData);
                if (!error.IsError)
                {
                    // Whatever parsed must be usable without touching memory outside the guest.
                    byte[] sink = new byte[packet.DataCapacity];
                    Assert.Equal(VsockPacketError.None, rx ? packet.CopyDataFrom(sink) : packet.CopyDataTo(sink));
                }

                Assert.Equal(QueueError.None, q.Queue.AddUsed(q.Memory, packet.HeadIndex, 0));
            }
        }, iter: 500);
    }
}
