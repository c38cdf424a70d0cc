using Virtio.Memory;
using Virtio.Queue;
using static Virtio.Vsock.Tests.QueueHarness;

namespace Virtio.Vsock.Tests;

/// <summary>Multi-descriptor and cross-region layouts give the same packet as the classic two-descriptor one.</summary>
public sealed class LayoutEquivalenceTests
{
    private static (VsockHeader Header, byte[] Data) Parse(QueueHarness q, DescriptorChain chain)
    {
        var packet = new VsockPacket();
        Assert.Equal(VsockPacketError.None, packet.TryParseTx(q.Memory, ref chain, MaxData));
        byte[] data = new byte[packet.DataCapacity];
        Assert.Equal(VsockPacketError.None, packet.CopyDataTo(data));
        return (packet.Header, data);
    }

    [Fact]
    public void Header_split_payload_spread_and_region_crossing_all_agree()
    {
        VsockHeader header = Samples.TxHeader with { Len = 40000 };
        byte[] stream = [.. Samples.Encode(header), .. Samples.Payload(40000)];

        using QueueHarness plain = Create();
        plain.Memory.Write(new GuestAddress(0x10_0000), stream.AsSpan(0, 44));
        plain.Memory.Write(new GuestAddress(0x20_0000), stream.AsSpan(44));
        var reference = Parse(plain, plain.Chain(R(0x10_0000, 44), R(0x20_0000, 40000)));

        // Header in three pieces, payload in five (Linux 6.17+ style), one piece across a region boundary.
        using QueueHarness split = WithRegionBoundaries(0x30_0000);
        uint[] pieces = [10, 30, 4, 8000, 12000, 10000, 6000, 4000];
        ulong[] at = [0x10_0000, 0x11_0000, 0x12_0000, 0x2F_F000, 0x40_0000, 0x50_0000, 0x60_0000, 0x70_0000];
        int offset = 0;
        var buffers = new Queue.Testing.TestBuffer[pieces.Length];
        for (int i = 0; i < pieces.Length; i++)
        {
            split.Memory.Write(new GuestAddress(at[i]), stream.AsSpan(offset, (int)pieces[i]));
            buffers[i] = R(at[i], pieces[i]);
            offset += (int)pieces[i];
        }

        var spread = Parse(split, split.Chain(buffers));
        Assert.Equal(reference.Header, spread.Header);
        Assert.Equal(reference.Data, spread.Data);

        // A single descriptor across the region boundary (the crate's FragmentedMemory case).
        using QueueHarness crossing = WithRegionBoundaries(0x30_0010);
        crossing.Memory.Write(new GuestAddress(0x30_0000), stream);
        var single = Parse(crossing, crossing.Chain(R(0x30_0000, (uint)stream.Length)));
        Assert.Equal(reference.Header, single.Header);
        Assert.Equal(reference.Data, single.Data);
    }

    [Fact]
    public void Setters_write_a_header_split_over_several_buffers()
    {
        using QueueHarness q = WithRegionBoundaries(0x10_0010);
        DescriptorChain chain = q.Chain(W(0x10_0000, 20), W(0x20_0000, 1), W(0x30_0000, 23 + 100));
        var packet = new VsockPacket();
        Assert.Equal(VsockPacketError.None, packet.TryParseRx(q.Memory, ref chain, MaxData));
        Assert.Equal(100, packet.DataCapacity);
        packet.SetHeader(Samples.TxHeader).SetDstPort(0xa1b2c3d4);

        byte[] seen = new byte[44];
        q.Memory.Read(new GuestAddress(0x10_0000), seen.AsSpan(0, 20));
        q.Memory.Read(new GuestAddress(0x20_0000), seen.AsSpan(20, 1));
        q.Memory.Read(new GuestAddress(0x30_0000), seen.AsSpan(21, 23));
        Assert.Equal(Samples.TxHeader with { DstPort = 0xa1b2c3d4 }, VsockHeader.Read(seen));
    }

    [Fact]
    public void Zero_length_descriptors_are_skipped()
    {
        using QueueHarness q = Create();
        VsockHeader header = Samples.TxHeader with { Len = 8 };
        q.Memory.Write(new GuestAddress(0x10_0000), Samples.Encode(header));
        q.Memory.Write(new GuestAddress(0x20_0000), Samples.Payload(8));
        // A zero-length buffer at an address outside memory is never touched.
        var parsed = Parse(q, q.Chain(R(0x10_0000, 44), R(0x7000_0000, 0), R(0x20_0000, 8)));
        Assert.Equal(header, parsed.Header);
        Assert.Equal(Samples.Payload(8), parsed.Data);
    }
}
