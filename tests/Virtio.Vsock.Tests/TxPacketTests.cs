using Virtio.Memory;
using Virtio.Queue;
using static Virtio.Vsock.Tests.QueueHarness;

namespace Virtio.Vsock.Tests;

public sealed class TxPacketTests
{
    private const ulong Header = 0x10_0000;
    private const ulong Data = 0x20_0000;

    private static VsockPacketError ParseTx(QueueHarness q, DescriptorChain chain, out VsockPacket packet, uint max = MaxData)
    {
        packet = new VsockPacket();
        return packet.TryParseTx(q.Memory, ref chain, max);
    }

    private static void WriteHeader(QueueHarness q, ulong at, uint len)
    {
        q.Memory.Write(new GuestAddress(at), Samples.Encode(Samples.TxHeader with { Len = len })).ThrowIfError(new GuestAddress(at));
    }

    [Fact]
    public void Two_descriptor_layout_parses_header_and_payload()
    {
        using QueueHarness q = Create();
        byte[] payload = Samples.Payload(4096);
        WriteHeader(q, Header, 4096);
        q.Memory.Write(new GuestAddress(Data), payload);

        Assert.Equal(VsockPacketError.None, ParseTx(q, q.Chain(R(Header, 44), R(Data, 4096)), out VsockPacket packet));
        Assert.Equal(Samples.TxHeader with { Len = 4096 }, packet.Header);
        Assert.Equal(3ul, packet.SrcCid);
        Assert.Equal(2ul, packet.DstCid);
        Assert.Equal(1024u, packet.SrcPort);
        Assert.Equal(1234u, packet.DstPort);
        Assert.Equal(4096u, packet.Len);
        Assert.Equal(VsockType.Stream, packet.Type);
        Assert.Equal(VsockOp.Rw, packet.Op);
        Assert.Equal(0u, packet.Flags);
        Assert.Equal(65536u, packet.BufAlloc);
        Assert.Equal(77u, packet.FwdCnt);
        Assert.False(packet.IsEmpty);
        Assert.Equal(4096, packet.DataCapacity);
        byte[] back = new byte[4096];
        Assert.Equal(VsockPacketError.None, packet.CopyDataTo(back));
        Assert.Equal(payload, back);
    }

    [Fact]
    public void Single_descriptor_layout_of_linux_6_2_parses_payload_after_the_header()
    {
        using QueueHarness q = Create();
        byte[] payload = Samples.Payload(100);
        WriteHeader(q, Header, 100);
        q.Memory.Write(new GuestAddress(Header + 44), payload);

        Assert.Equal(VsockPacketError.None, ParseTx(q, q.Chain(R(Header, 144)), out VsockPacket packet));
        byte[] back = new byte[100];
        Assert.Equal(VsockPacketError.None, packet.CopyDataTo(back));
        Assert.Equal(payload, back);
    }

    [Fact]
    public void Empty_packet_needs_no_data_descriptor()
    {
        using QueueHarness q = Create();
        WriteHeader(q, Header, 0);
        Assert.Equal(VsockPacketError.None, ParseTx(q, q.Chain(R(Header, 44)), out VsockPacket packet));
        Assert.True(packet.IsEmpty);
        Assert.Equal(0, packet.DataCapacity);
    }

    [Fact]
    public void Write_only_head_is_refused()
    {
        using QueueHarness q = Create();
        WriteHeader(q, Header, 0);
        Assert.Equal(VsockPacketErrorKind.UnexpectedWriteOnlyDescriptor, ParseTx(q, q.Chain(W(Header, 44)), out _).Kind);
    }

    [Fact]
    public void Write_only_data_descriptor_is_refused()
    {
        using QueueHarness q = Create();
        WriteHeader(q, Header, 16);
        Assert.Equal(VsockPacketErrorKind.UnexpectedWriteOnlyDescriptor, ParseTx(q, q.Chain(R(Header, 44), W(Data, 16)), out _).Kind);
    }

    [Fact]
    public void Head_shorter_than_a_header_is_too_small()
    {
        using QueueHarness q = Create();
        WriteHeader(q, Header, 0);
        Assert.Equal(VsockPacketErrorKind.DescriptorLengthTooSmall, ParseTx(q, q.Chain(R(Header, 43)), out _).Kind);
    }

    [Fact]
    public void Missing_data_descriptor_is_chain_too_short()
    {
        using QueueHarness q = Create();
        WriteHeader(q, Header, 16);
        Assert.Equal(VsockPacketErrorKind.DescriptorChainTooShort, ParseTx(q, q.Chain(R(Header, 44)), out _).Kind);
    }

    [Fact]
    public void Data_descriptor_shorter_than_len_is_too_small()
    {
        using QueueHarness q = Create();
        WriteHeader(q, Header, 4096);
        Assert.Equal(VsockPacketErrorKind.DescriptorLengthTooSmall, ParseTx(q, q.Chain(R(Header, 44), R(Data, 4095)), out _).Kind);
    }

    [Fact]
    public void Len_above_max_data_size_is_an_invalid_header_len_naming_it()
    {
        using QueueHarness q = Create();
        WriteHeader(q, Header, MaxData + 1);
        VsockPacketError error = ParseTx(q, q.Chain(R(Header, 44), R(Data, MaxData + 1)), out _);
        Assert.Equal(VsockPacketErrorKind.InvalidHeaderLen, error.Kind);
        Assert.Equal(MaxData + 1, error.Value);
        Assert.Contains("65537", error.Describe());
    }

    [Fact]
    public void Header_outside_guest_memory_names_the_address()
    {
        using QueueHarness q = Create();
        VsockPacketError error = ParseTx(q, q.Chain(R(0x4000_0000, 44)), out _);
        Assert.Equal(VsockPacketErrorKind.InvalidMemoryAccess, error.Kind);
        Assert.Equal(0x4000_0000ul, error.Value);
        Assert.Contains("0x40000000", error.Describe());
    }

    [Fact]
    public void Data_running_past_the_end_of_memory_names_its_address()
    {
        using QueueHarness q = Create();
        WriteHeader(q, Header, 0x2000);
        ulong nearEnd = (16 << 20) - 0x1000;
        VsockPacketError error = ParseTx(q, q.Chain(R(Header, 44), R(nearEnd, 0x2000)), out _);
        Assert.Equal(VsockPacketErrorKind.InvalidMemoryAccess, error.Kind);
        Assert.Equal(nearEnd, error.Value);
    }

    [Fact]
    public void A_consumed_chain_cannot_be_parsed_again()
    {
        using QueueHarness q = Create();
        WriteHeader(q, Header, 16);
        DescriptorChain chain = q.Chain(R(Header, 44), R(Data, 16));
        var packet = new VsockPacket();
        Assert.Equal(VsockPacketError.None, packet.TryParseTx(q.Memory, ref chain, MaxData));
        Assert.Equal(VsockPacketErrorKind.DescriptorChainTooShort, packet.TryParseTx(q.Memory, ref chain, MaxData).Kind);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(16u)]
    public void Descriptors_after_the_payload_are_consumed_so_the_chain_cannot_be_parsed_again(uint len)
    {
        using QueueHarness q = Create();
        WriteHeader(q, Header, len);
        WriteHeader(q, Data + 0x100, 0); // a second, well-formed header behind the packet
        DescriptorChain chain = len == 0
            ? q.Chain(R(Header, 44), R(Data + 0x100, 44))
            : q.Chain(R(Header, 44), R(Data, len), R(Data + 0x100, 44));
        var packet = new VsockPacket();
        Assert.Equal(VsockPacketError.None, packet.TryParseTx(q.Memory, ref chain, MaxData));
        Assert.Equal(len, packet.Len);
        Assert.Equal(VsockPacketErrorKind.DescriptorChainTooShort, packet.TryParseTx(q.Memory, ref chain, MaxData).Kind);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(16u)]
    public void A_write_only_descriptor_after_the_payload_is_refused(uint len)
    {
        using QueueHarness q = Create();
        WriteHeader(q, Header, len);
        DescriptorChain chain = len == 0
            ? q.Chain(R(Header, 44), W(Data + 0x100, 64))
            : q.Chain(R(Header, 44), R(Data, len), W(Data + 0x100, 64));
        Assert.Equal(VsockPacketErrorKind.UnexpectedWriteOnlyDescriptor, ParseTx(q, chain, out _).Kind);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(16u)]
    public void A_descriptor_outside_guest_memory_after_the_payload_names_its_address(uint len)
    {
        using QueueHarness q = Create();
        WriteHeader(q, Header, len);
        DescriptorChain chain = len == 0
            ? q.Chain(R(Header, 44), R(0x4000_0000, 64))
            : q.Chain(R(Header, 44), R(Data, len), R(0x4000_0000, 64));
        VsockPacketError error = ParseTx(q, chain, out _);
        Assert.Equal(VsockPacketErrorKind.InvalidMemoryAccess, error.Kind);
        Assert.Equal(0x4000_0000ul, error.Value);
    }

    [Fact]
    public void Guest_rewriting_the_header_after_parsing_changes_nothing()
    {
        using QueueHarness q = Create();
        WriteHeader(q, Header, 8);
        Assert.Equal(VsockPacketError.None, ParseTx(q, q.Chain(R(Header, 44), R(Data, 8)), out VsockPacket packet));
        q.Memory.Write(new GuestAddress(Header), new byte[44]);
        q.Memory.WriteU32(new GuestAddress(Header + 24), 0xffff_ffff);
        Assert.Equal(Samples.TxHeader with { Len = 8 }, packet.Header);
        Assert.Equal(8u, packet.Len);
    }

    [Fact]
    public void Malformed_chain_is_reported_with_the_queue_error()
    {
        using QueueHarness q = Create();
        // A descriptor that points to itself: a loop.
        q.Driver.WriteDescriptor(0, new GuestAddress(Header), 44, DescriptorFlags.Next, 0);
        q.Driver.PushAvail(0);
        q.Driver.SetAvailIndex(1);
        Assert.True(q.Queue.TryPopChain(q.Memory, out DescriptorChain chain, out _));
        WriteHeader(q, Header, 0x10000);
        var packet = new VsockPacket();
        VsockPacketError error = packet.TryParseTx(q.Memory, ref chain, MaxData);
        Assert.Equal(VsockPacketErrorKind.InvalidChain, error.Kind);
        Assert.Equal(QueueError.ChainTooLong, error.QueueError);
    }

    [Fact]
    public void Throwing_conveniences_throw_the_typed_error()
    {
        using QueueHarness q = Create();
        WriteHeader(q, Header, 0);
        DescriptorChain good = q.Chain(R(Header, 44));
        Assert.Equal(Samples.TxHeader, VsockPacket.FromTxVirtqChain(q.Memory, ref good, MaxData).Header);
        DescriptorChain bad = q.Chain(W(Header, 44));
        VsockPacketException thrown = Assert.Throws<VsockPacketException>(() => VsockPacket.FromTxVirtqChain(q.Memory, ref bad, MaxData));
        Assert.Equal(VsockPacketErrorKind.UnexpectedWriteOnlyDescriptor, thrown.Error.Kind);
    }
}
