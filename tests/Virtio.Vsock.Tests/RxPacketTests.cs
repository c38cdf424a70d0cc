using System.Buffers.Binary;
using Virtio.Memory;
using Virtio.Queue;
using static Virtio.Vsock.Tests.QueueHarness;

namespace Virtio.Vsock.Tests;

public sealed class RxPacketTests
{
    private const ulong Header = 0x10_0000;
    private const ulong Data = 0x20_0000;

    private static VsockPacketError ParseRx(QueueHarness q, DescriptorChain chain, out VsockPacket packet, uint max = MaxData)
    {
        packet = new VsockPacket();
        return packet.TryParseRx(q.Memory, ref chain, max);
    }

    [Fact]
    public void Two_descriptor_layout_gives_a_zeroed_header_and_the_data_buffer()
    {
        using QueueHarness q = Create();
        q.Memory.Write(new GuestAddress(Header), Samples.Encode(Samples.TxHeader));
        Assert.Equal(VsockPacketError.None, ParseRx(q, q.Chain(W(Header, 44), W(Data, 4096)), out VsockPacket packet));
        Assert.Equal(default, packet.Header);
        Assert.Equal(4096, packet.DataCapacity);
    }

    [Fact]
    public void Single_descriptor_layout_puts_data_after_the_header()
    {
        using QueueHarness q = Create();
        Assert.Equal(VsockPacketError.None, ParseRx(q, q.Chain(W(Header, 44 + 4096)), out VsockPacket packet));
        Assert.Equal(4096, packet.DataCapacity);
        byte[] payload = Samples.Payload(4096);
        Assert.Equal(VsockPacketError.None, packet.CopyDataFrom(payload));
        byte[] back = new byte[4096];
        q.Memory.Read(new GuestAddress(Header + 44), back);
        Assert.Equal(payload, back);
    }

    [Fact]
    public void Read_only_head_is_refused()
    {
        using QueueHarness q = Create();
        Assert.Equal(VsockPacketErrorKind.UnexpectedReadOnlyDescriptor, ParseRx(q, q.Chain(R(Header, 44), R(Data, 16)), out _).Kind);
    }

    [Fact]
    public void Read_only_data_descriptor_is_refused()
    {
        using QueueHarness q = Create();
        // A readable buffer after a writable one: the queue flags it, the packet names it.
        Assert.Equal(VsockPacketErrorKind.UnexpectedReadOnlyDescriptor, ParseRx(q, q.Chain(W(Header, 44), R(Data, 16)), out _).Kind);
    }

    [Fact]
    public void Head_shorter_than_a_header_is_too_small()
    {
        using QueueHarness q = Create();
        Assert.Equal(VsockPacketErrorKind.DescriptorLengthTooSmall, ParseRx(q, q.Chain(W(Header, 43)), out _).Kind);
    }

    [Fact]
    public void Missing_data_buffer_is_chain_too_short()
    {
        using QueueHarness q = Create();
        Assert.Equal(VsockPacketErrorKind.DescriptorChainTooShort, ParseRx(q, q.Chain(W(Header, 44)), out _).Kind);
    }

    [Fact]
    public void Data_buffer_above_max_data_size_is_too_long_in_every_layout()
    {
        using QueueHarness q = Create();
        Assert.Equal(VsockPacketErrorKind.DescriptorLengthTooLong, ParseRx(q, q.Chain(W(Header, 44), W(Data, MaxData + 1)), out _).Kind);
        // rust-vmm's crate lets this one through; the limit is the same here.
        Assert.Equal(VsockPacketErrorKind.DescriptorLengthTooLong, ParseRx(q, q.Chain(W(Header, 44 + MaxData + 1)), out _).Kind);
        Assert.Equal(VsockPacketErrorKind.DescriptorLengthTooLong, ParseRx(q, q.Chain(W(Header, 44 + 0x8000), W(Data, 0x8001)), out _).Kind);
        Assert.Equal(VsockPacketError.None, ParseRx(q, q.Chain(W(Header, 44 + 0x8000), W(Data, 0x8000)), out _));
    }

    [Fact]
    public void Buffers_outside_guest_memory_name_their_address()
    {
        using QueueHarness q = Create();
        VsockPacketError header = ParseRx(q, q.Chain(W(0x7000_0000, 44), W(Data, 16)), out _);
        Assert.Equal(VsockPacketErrorKind.InvalidMemoryAccess, header.Kind);
        Assert.Equal(0x7000_0000ul, header.Value);

        VsockPacketError data = ParseRx(q, q.Chain(W(Header, 44), W(0x7100_0000, 16)), out _);
        Assert.Equal(VsockPacketErrorKind.InvalidMemoryAccess, data.Kind);
        Assert.Equal(0x7100_0000ul, data.Value);
    }

    [Fact]
    public void Setters_write_guest_memory_little_endian_and_the_copy()
    {
        using QueueHarness q = Create();
        Assert.Equal(VsockPacketError.None, ParseRx(q, q.Chain(W(Header, 44), W(Data, 4096)), out VsockPacket packet));
        packet.SetSrcCid(0x0102030405060708)
            .SetDstCid(2)
            .SetSrcPort(0x11223344)
            .SetDstPort(0x55667788)
            .SetLen(4096)
            .SetType(VsockType.SeqPacket)
            .SetOp(VsockOp.Rw)
            .SetFlags((uint)SeqPacketFlags.EndOfMessage)
            .SetFlag((uint)SeqPacketFlags.EndOfRecord)
            .SetBufAlloc(0x10000)
            .SetFwdCnt(0xdeadbeef);

        byte[] raw = new byte[44];
        q.Memory.Read(new GuestAddress(Header), raw);
        Assert.Equal(0x0102030405060708ul, BinaryPrimitives.ReadUInt64LittleEndian(raw));
        Assert.Equal(0x08, raw[0]);
        Assert.Equal(2ul, BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(8)));
        Assert.Equal(0x11223344u, BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(16)));
        Assert.Equal(0x55667788u, BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(20)));
        Assert.Equal(4096u, BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(24)));
        Assert.Equal(2, BinaryPrimitives.ReadUInt16LittleEndian(raw.AsSpan(28)));
        Assert.Equal(5, BinaryPrimitives.ReadUInt16LittleEndian(raw.AsSpan(30)));
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(32)));
        Assert.Equal(0x10000u, BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(36)));
        Assert.Equal(0xdeadbeefu, BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(40)));
        Assert.Equal(VsockHeader.Read(raw), packet.Header);
        Assert.Equal(3u, packet.Flags);
    }

    [Fact]
    public void Set_header_from_raw_needs_exactly_44_bytes_and_refreshes_the_copy()
    {
        using QueueHarness q = Create();
        Assert.Equal(VsockPacketError.None, ParseRx(q, q.Chain(W(Header, 44), W(Data, 16)), out VsockPacket packet));
        VsockPacketError wrong = packet.SetHeaderFromRaw(new byte[43]);
        Assert.Equal(VsockPacketErrorKind.InvalidHeaderInputSize, wrong.Kind);
        Assert.Equal(43ul, wrong.Value);
        Assert.Equal(VsockPacketErrorKind.InvalidHeaderInputSize, packet.SetHeaderFromRaw(new byte[45]).Kind);

        byte[] raw = Samples.Encode(Samples.TxHeader);
        Assert.Equal(VsockPacketError.None, packet.SetHeaderFromRaw(raw));
        Assert.Equal(Samples.TxHeader, packet.Header);
        byte[] back = new byte[44];
        q.Memory.Read(new GuestAddress(Header), back);
        Assert.Equal(raw, back);
    }

    [Fact]
    public void Copies_past_the_data_buffer_are_refused()
    {
        using QueueHarness q = Create();
        Assert.Equal(VsockPacketError.None, ParseRx(q, q.Chain(W(Header, 44), W(Data, 16)), out VsockPacket packet));
        Assert.Equal(VsockPacketErrorKind.DataOutOfRange, packet.CopyDataFrom(new byte[17]).Kind);
        Assert.Equal(VsockPacketErrorKind.DataOutOfRange, packet.CopyDataFrom(new byte[8], offset: 9).Kind);
        Assert.Equal(VsockPacketErrorKind.DataOutOfRange, packet.CopyDataTo(new byte[1], offset: -1).Kind);
        Assert.Equal(VsockPacketError.None, packet.CopyDataFrom(new byte[8], offset: 8));
    }

    [Fact]
    public void A_consumed_chain_cannot_be_parsed_again()
    {
        using QueueHarness q = Create();
        DescriptorChain chain = q.Chain(W(Header, 44), W(Data, 16));
        var packet = new VsockPacket();
        Assert.Equal(VsockPacketError.None, packet.TryParseRx(q.Memory, ref chain, MaxData));
        Assert.Equal(VsockPacketErrorKind.DescriptorChainTooShort, packet.TryParseRx(q.Memory, ref chain, MaxData).Kind);
    }
}
