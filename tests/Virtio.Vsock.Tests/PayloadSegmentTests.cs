using Virtio.Memory;
using Virtio.Queue;
using static Virtio.Vsock.Tests.QueueHarness;

namespace Virtio.Vsock.Tests;

/// <summary>
/// The packet's segment table is the stack's one view of a chain's bytes (it replaced the queue layer's
/// chain reader and writer): payload copies at any offset across descriptors, spans split at region
/// boundaries, indirect chains, malformed chains and descriptors rewritten after parsing.
/// </summary>
public sealed class PayloadSegmentTests
{
    private const ulong Header = 0x10_0000;

    [Fact]
    public void Partial_copies_read_across_descriptors_in_order()
    {
        using QueueHarness q = Create();
        byte[] payload = Samples.Payload(100);
        q.Memory.Write(new GuestAddress(Header), Samples.Encode(Samples.TxHeader with { Len = 100 }));
        q.Memory.Write(new GuestAddress(0x20_0000), payload.AsSpan(0, 30));
        q.Memory.Write(new GuestAddress(0x30_0000), payload.AsSpan(30));
        DescriptorChain chain = q.Chain(R(Header, 44), R(0x20_0000, 30), R(0x30_0000, 70));
        var packet = new VsockPacket();
        Assert.Equal(VsockPacketError.None, packet.TryParseTx(q.Memory, ref chain, MaxData));

        byte[] first = new byte[10];
        byte[] rest = new byte[90];
        Assert.Equal(VsockPacketError.None, packet.CopyDataTo(first));
        Assert.Equal(VsockPacketError.None, packet.CopyDataTo(rest, offset: 10));
        Assert.Equal(payload, first.Concat(rest).ToArray());
        byte[] straddle = new byte[20];
        Assert.Equal(VsockPacketError.None, packet.CopyDataTo(straddle, offset: 20));
        Assert.Equal(payload.AsSpan(20, 20).ToArray(), straddle);
        Assert.Equal(VsockPacketErrorKind.DataOutOfRange, packet.CopyDataTo(new byte[1], offset: 100).Kind);
    }

    [Fact]
    public void Spans_stop_at_region_boundaries()
    {
        using QueueHarness q = WithRegionBoundaries(0x20_0100);
        DescriptorChain chain = q.Chain(W(Header, 44), W(0x20_0000, 0x200));
        var packet = new VsockPacket();
        Assert.Equal(VsockPacketError.None, packet.TryParseRx(q.Memory, ref chain, MaxData));
        Assert.Equal(new[] { 0x100, 0x100 }, Lengths(packet.GetDataSpans(0, int.MaxValue)));
        Assert.Equal(new[] { 0x80, 0x10 }, Lengths(packet.GetDataSpans(0x80, 0x90)));
        Assert.Equal(new[] { 0x10 }, Lengths(packet.GetDataSpans(0x1f0, 0x1000))); // clamped to the buffer

        byte[] payload = Samples.Payload(0x200);
        Assert.Equal(VsockPacketError.None, packet.CopyDataFrom(payload));
        byte[] back = new byte[0x200];
        Assert.Equal(MemoryError.None, q.Memory.Read(new GuestAddress(0x20_0000), back));
        Assert.Equal(payload, back);
    }

    [Fact]
    public void Indirect_chains_parse_like_direct_ones()
    {
        using QueueHarness q = Create();
        q.Queue.IndirectDescriptors = true;
        byte[] payload = Samples.Payload(300);
        q.Memory.Write(new GuestAddress(Header), Samples.Encode(Samples.TxHeader with { Len = 300 }));
        q.Memory.Write(new GuestAddress(0x20_0000), payload);
        var packet = new VsockPacket();

        DescriptorChain tx = IndirectChain(q, 0x80_0000, R(Header, 44), R(0x20_0000, 300));
        Assert.Equal(VsockPacketError.None, packet.TryParseTx(q.Memory, ref tx, MaxData));
        Assert.Equal(Samples.TxHeader with { Len = 300 }, packet.Header);
        byte[] read = new byte[300];
        Assert.Equal(VsockPacketError.None, packet.CopyDataTo(read));
        Assert.Equal(payload, read);

        DescriptorChain rx = IndirectChain(q, 0x81_0000, W(0x40_0000, 44), W(0x50_0000, 4096));
        Assert.Equal(VsockPacketError.None, packet.TryParseRx(q.Memory, ref rx, MaxData));
        Assert.Equal(4096, packet.DataCapacity);
        packet.SetHeader(Samples.TxHeader with { Len = 300 });
        Assert.Equal(VsockPacketError.None, packet.CopyDataFrom(payload));
        byte[] landed = new byte[300];
        q.Memory.Read(new GuestAddress(0x50_0000), landed);
        Assert.Equal(payload, landed);
        byte[] header = new byte[44];
        q.Memory.Read(new GuestAddress(0x40_0000), header);
        Assert.Equal(Samples.TxHeader with { Len = 300 }, VsockHeader.Read(header));
    }

    [Fact]
    public void A_malformed_chain_leaves_no_payload_to_copy()
    {
        using QueueHarness q = Create();
        // Readable after writable: the packet is refused and exposes no bytes at all.
        q.Driver.WriteDescriptor(0, new GuestAddress(Header), 44, DescriptorFlags.Write | DescriptorFlags.Next, 1);
        q.Driver.WriteDescriptor(1, new GuestAddress(0x20_0000), 100, DescriptorFlags.Write | DescriptorFlags.Next, 2);
        q.Driver.WriteDescriptor(2, new GuestAddress(0x30_0000), 100, DescriptorFlags.None, 0);
        q.Driver.PushAvail(0);
        q.Driver.SetAvailIndex(1);
        Assert.True(q.Queue.TryPopChain(q.Memory, out DescriptorChain chain, out _));
        var packet = new VsockPacket();
        Assert.Equal(VsockPacketErrorKind.UnexpectedReadOnlyDescriptor, packet.TryParseRx(q.Memory, ref chain, MaxData).Kind);
        Assert.Equal(0, packet.DataCapacity);
        Assert.Empty(Lengths(packet.GetDataSpans(0, int.MaxValue)));
        Assert.Equal(VsockPacketErrorKind.DataOutOfRange, packet.CopyDataFrom(new byte[1]).Kind);

        DescriptorChain again = q.Chain(W(Header, 44));
        VsockPacketException thrown = Assert.Throws<VsockPacketException>(() => VsockPacket.FromRxVirtqChain(q.Memory, ref again, MaxData));
        Assert.Equal(VsockPacketErrorKind.DescriptorChainTooShort, thrown.Error.Kind);
    }

    [Fact]
    public void Descriptors_rewritten_after_parsing_do_not_move_the_payload()
    {
        using QueueHarness q = Create();
        ushort head = q.Driver.AddChain(W(Header, 44), W(0x20_0000, 64));
        q.Driver.Publish();
        Assert.True(q.Queue.TryPopChain(q.Memory, out DescriptorChain chain, out _));
        VsockPacket packet = VsockPacket.FromRxVirtqChain(q.Memory, ref chain, MaxData);

        // Hostile driver: aim the data descriptor elsewhere and make it huge once the device has parsed it.
        q.Driver.WriteDescriptor((ushort)(head + 1), new GuestAddress(0x70_0000), 0x10000, DescriptorFlags.Write, 0);
        byte[] payload = Samples.Payload(64);
        Assert.Equal(VsockPacketError.None, packet.CopyDataFrom(payload));
        Assert.Equal(VsockPacketErrorKind.DataOutOfRange, packet.CopyDataFrom(new byte[65]).Kind);
        byte[] back = new byte[64];
        q.Memory.Read(new GuestAddress(0x20_0000), back);
        Assert.Equal(payload, back);
        q.Memory.Read(new GuestAddress(0x70_0000), back);
        Assert.All(back, b => Assert.Equal(0, b));
    }

    private static DescriptorChain IndirectChain(QueueHarness q, ulong table, params Queue.Testing.TestBuffer[] buffers)
    {
        q.Driver.AddIndirectChain(new GuestAddress(table), buffers);
        q.Driver.Publish();
        Assert.True(q.Queue.TryPopChain(q.Memory, out DescriptorChain chain, out QueueError error), error.Describe());
        return chain;
    }

    private static int[] Lengths(DataSpanEnumerator spans)
    {
        var lengths = new List<int>();
        while (spans.MoveNext())
        {
            lengths.Add(spans.Current.Length);
        }

        Assert.False(spans.Error.IsError);
        return [.. lengths];
    }
}
