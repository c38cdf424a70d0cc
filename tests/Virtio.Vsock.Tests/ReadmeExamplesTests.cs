using Virtio.Memory;
using Virtio.Queue;
using Virtio.Queue.Testing;
using VirtioVsock.Tests.Common;

namespace Virtio.Vsock.Tests;

/// <summary>
/// The README's packet examples, compiled and run. The code between the <c>README:</c> markers is
/// checked to appear verbatim in README.md, so the two cannot drift apart.
/// </summary>
public sealed class ReadmeExamplesTests
{
    [Fact]
    public void Tx_processing_loop_reads_every_packet_and_returns_every_chain()
    {
        using QueueHarness q = QueueHarness.Create();
        var header = new VsockHeader { SrcCid = 3, DstCid = 2, SrcPort = 1024, DstPort = 1234, Len = 5, Type = VsockType.Stream, Op = VsockOp.Rw };
        for (ulong k = 0; k < 3; k++)
        {
            ulong at = 0x10_0000 + (k * 0x1000);
            q.Memory.Write(new GuestAddress(at), Samples.Encode(header));
            q.Memory.Write(new GuestAddress(at + 44), "hello"u8);
            q.Driver.AddChain(TestBuffer.DeviceReadable(at, 49));
        }

        q.Driver.Publish();
        GuestMemory memory = q.Memory;
        VirtQueue txQueue = q.Queue;
        var received = new List<string>();

        // README:tx-begin
        var packet = new VsockPacket();          // reused for every chain: no allocation per packet
        Span<byte> payload = stackalloc byte[4096];
        while (txQueue.TryPopChain(memory, out DescriptorChain chain, out QueueError ringError))
        {
            VsockPacketError error = packet.TryParseTx(memory, ref chain, maxDataSize: 64 * 1024);
            if (error.IsError)
            {
                Console.WriteLine($"dropping a bad TX chain: {error.Describe()}");
            }
            else if (packet.Op == VsockOp.Rw && packet.Len <= payload.Length)
            {
                packet.CopyDataTo(payload[..(int)packet.Len]);
                received.Add(System.Text.Encoding.ASCII.GetString(payload[..(int)packet.Len]));
            }

            txQueue.AddUsed(memory, chain.HeadIndex, 0); // TX chains are always returned, bad ones too
        }
        // README:tx-end

        Assert.Equal(["hello", "hello", "hello"], received);
        int used = 0;
        while (q.Driver.TryTakeUsed(out _))
        {
            used++;
        }

        Assert.Equal(3, used);
    }

    [Fact]
    public void Rx_filling_loop_writes_header_and_payload_into_driver_buffers()
    {
        using QueueHarness q = QueueHarness.Create();
        q.Driver.AddChain(TestBuffer.DeviceWritable(0x10_0000, 44 + 4096));
        q.Driver.AddChain(TestBuffer.DeviceWritable(0x20_0000, 44), TestBuffer.DeviceWritable(0x20_1000, 4096));
        q.Driver.Publish();
        GuestMemory memory = q.Memory;
        VirtQueue rxQueue = q.Queue;
        byte[] message = "hello from the host"u8.ToArray();

        // README:rx-begin
        var packet = new VsockPacket();
        while (rxQueue.TryPopChain(memory, out DescriptorChain chain, out _))
        {
            uint used = 0;
            if (!packet.TryParseRx(memory, ref chain, maxDataSize: 64 * 1024).IsError
                && !packet.CopyDataFrom(message).IsError)
            {
                packet.SetSrcCid(2).SetDstCid(3)
                    .SetSrcPort(1234).SetDstPort(1024)
                    .SetType(VsockType.Stream).SetOp(VsockOp.Rw)
                    .SetLen((uint)message.Length)
                    .SetBufAlloc(64 * 1024).SetFwdCnt(0);
                used = VsockHeader.Size + (uint)message.Length;
            }

            rxQueue.AddUsed(memory, chain.HeadIndex, used);
        }
        // README:rx-end

        for (int i = 0; i < 2; i++)
        {
            Assert.True(q.Driver.TryTakeUsed(out UsedElement element));
            Assert.Equal(44u + (uint)message.Length, element.Length);
        }

        byte[] second = new byte[message.Length];
        q.Memory.Read(new GuestAddress(0x20_1000), second);
        Assert.Equal(message, second);
        q.Memory.ReadU32(new GuestAddress(0x10_0000 + 24), out uint len);
        Assert.Equal((uint)message.Length, len);
    }

    [Theory]
    [InlineData("tx")]
    [InlineData("rx")]
    public void The_readme_shows_exactly_this_code(string example) =>
        ReadmeSnippet.AssertShownInReadme(Path.Combine("tests", "Virtio.Vsock.Tests", "ReadmeExamplesTests.cs"), example);
}
