using System.Net.Sockets;
using Virtio.Memory;
using Virtio.Queue;
using static Virtio.Vsock.Tests.QueueHarness;

namespace Virtio.Vsock.Tests;

public sealed class HostBufferAndIoTests
{
    [Fact]
    public void Packets_over_host_buffers_have_the_same_accessors()
    {
        byte[] header = Samples.Encode(Samples.TxHeader with { Len = 5 });
        byte[] data = [1, 2, 3, 4, 5];
        VsockPacket packet = VsockPacket.FromBuffers(header, data);
        Assert.Equal(Samples.TxHeader with { Len = 5 }, packet.Header);
        Assert.Equal(5, packet.DataCapacity);

        packet.SetOp(VsockOp.CreditUpdate).SetFwdCnt(9);
        Assert.Equal(VsockOp.CreditUpdate, VsockHeader.Read(header).Op);
        Assert.Equal(9u, VsockHeader.Read(header).FwdCnt);

        byte[] back = new byte[3];
        Assert.Equal(VsockPacketError.None, packet.CopyDataTo(back, offset: 2));
        Assert.Equal([3, 4, 5], back);
        Assert.Equal(VsockPacketError.None, packet.CopyDataFrom([9, 9], offset: 3));
        Assert.Equal([1, 2, 3, 9, 9], data);
        Assert.Equal(VsockPacketErrorKind.DataOutOfRange, packet.CopyDataFrom([9, 9], offset: 4).Kind);
    }

    [Fact]
    public void Host_header_buffers_must_be_exactly_44_bytes()
    {
        VsockPacketError error = VsockPacket.TryFromBuffers(new byte[40], Array.Empty<byte>(), out VsockPacket? packet);
        Assert.Null(packet);
        Assert.Equal(VsockPacketErrorKind.InvalidHeaderInputSize, error.Kind);
        Assert.Equal(40ul, error.Value);
        Assert.Contains("40", error.Describe());
        Assert.Throws<VsockPacketException>(() => VsockPacket.FromBuffers(new byte[45], Array.Empty<byte>()));
    }

    [Fact]
    public void Payload_moves_between_a_socket_and_guest_memory_without_a_staging_buffer()
    {
        using QueueHarness q = WithRegionBoundaries(0x20_0800);
        (Socket left, Socket right) = SocketPair();
        using (left)
        using (right)
        {
            // TX: guest payload spread over two buffers, one of them across a region boundary, goes out on the socket.
            byte[] payload = Samples.Payload(6000);
            q.Memory.Write(new GuestAddress(0x10_0000), Samples.Encode(Samples.TxHeader with { Len = 6000 }));
            q.Memory.Write(new GuestAddress(0x20_0000), payload.AsSpan(0, 4000));
            q.Memory.Write(new GuestAddress(0x30_0000), payload.AsSpan(4000));
            DescriptorChain tx = q.Chain(R(0x10_0000, 44), R(0x20_0000, 4000), R(0x30_0000, 2000));
            var packet = new VsockPacket();
            Assert.Equal(VsockPacketError.None, packet.TryParseTx(q.Memory, ref tx, MaxData));
            int sent = 0;
            int spanCount = 0;
            foreach (Span<byte> span in packet.GetDataSpans(0, int.MaxValue))
            {
                spanCount++;
                sent += left.Send(span);
            }

            Assert.Equal(6000, sent);
            Assert.Equal(3, spanCount); // 4000 bytes split at the region boundary, then 2000

            byte[] received = new byte[6000];
            int got = 0;
            while (got < received.Length)
            {
                got += right.Receive(received.AsSpan(got));
            }

            Assert.Equal(payload, received);

            // RX: bytes from the socket land straight in the guest's RX buffer.
            right.Send(payload.AsSpan(0, 3000));
            DescriptorChain rx = q.Chain(W(0x40_0000, 44 + 1000), W(0x50_0000, 4096));
            Assert.Equal(VsockPacketError.None, packet.TryParseRx(q.Memory, ref rx, MaxData));
            int total = 0;
            while (total < 3000)
            {
                DataSpanEnumerator spans = packet.GetDataSpans(total, 3000 - total);
                Assert.True(spans.MoveNext());
                int n = left.Receive(spans.Current);
                Assert.True(n > 0, "the peer closed early");
                total += n;
            }

            Assert.Equal(3000, total);
            byte[] landed = new byte[3000];
            Assert.Equal(VsockPacketError.None, packet.CopyDataTo(landed));
            Assert.Equal(payload.AsSpan(0, 3000).ToArray(), landed);

            // The spans of an RX buffer across two guest buffers: 1000 bytes after the header, then 4096.
            Assert.Equal(new[] { 1000, 4096 }, SpanLengths(packet, 0, int.MaxValue));
            Assert.Equal(new[] { 500, 100 }, SpanLengths(packet, 500, 600));
        }
    }

    [Fact]
    public void Payload_moves_between_a_stream_and_guest_memory()
    {
        using QueueHarness q = Create();
        byte[] payload = Samples.Payload(5000);
        DescriptorChain rx = q.Chain(W(0x10_0000, 44), W(0x20_0000, 2000), W(0x30_0000, 3000));
        var packet = new VsockPacket();
        Assert.Equal(VsockPacketError.None, packet.TryParseRx(q.Memory, ref rx, MaxData));
        var source = new MemoryStream(payload);
        foreach (Span<byte> span in packet.GetDataSpans(0, 5000))
        {
            source.ReadExactly(span);
        }

        var sink = new MemoryStream();
        foreach (Span<byte> span in packet.GetDataSpans(1000, 4000))
        {
            sink.Write(span);
        }

        Assert.Equal(payload.AsSpan(1000).ToArray(), sink.ToArray());
    }

    [Fact]
    public void Access_after_guest_memory_is_released_fails_cleanly()
    {
        QueueHarness q = Create();
        DescriptorChain rx = q.Chain(W(0x10_0000, 44 + 100));
        var packet = new VsockPacket();
        Assert.Equal(VsockPacketError.None, packet.TryParseRx(q.Memory, ref rx, MaxData));
        q.Dispose();
        Assert.Equal(VsockPacketErrorKind.InvalidMemoryAccess, packet.CopyDataFrom(new byte[10]).Kind);
        Assert.Equal(VsockPacketErrorKind.InvalidMemoryAccess, packet.SetHeaderFromRaw(new byte[44]).Kind);
    }

    private static int[] SpanLengths(VsockPacket packet, int offset, int count)
    {
        var lengths = new List<int>();
        DataSpanEnumerator spans = packet.GetDataSpans(offset, count);
        while (spans.MoveNext())
        {
            lengths.Add(spans.Current.Length);
        }

        Assert.False(spans.Error.IsError);
        return [.. lengths];
    }

    private static (Socket, Socket) SocketPair()
    {
        string path = Path.Combine(Path.GetTempPath(), $"vsock-test-{Guid.NewGuid():N}.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        client.Connect(new UnixDomainSocketEndPoint(path));
        Socket server = listener.Accept();
        File.Delete(path);
        client.ReceiveTimeout = server.ReceiveTimeout = 5000;
        return (client, server);
    }
}
