using Virtio.Vsock.Device.Backends.InProcess;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.Reliability;

/// <summary>What a guest can make the device hold is bounded (issue 10, defect 6).</summary>
public sealed class BoundedMemoryTests
{
    private const uint Port = 5400;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public void StaleTimersAreSweptSoDeadItemsAreNotKeptReachable()
    {
        var items = Enumerable.Range(0, 10_000).Select(i => new Timed { Deadline = 1000 + i }).ToArray();
        var queue = new DeadlineQueue<Timed>(static (item, deadline) => !item.Dead && item.Deadline == deadline);
        int live = 0;
        foreach (Timed item in items)
        {
            queue.Add(item, item.Deadline, live);
            item.Dead = true; // as a connection refused at once: its timer entry is stale right away
            Assert.True(queue.Count <= (2 * live) + 65, $"{queue.Count} entries for {live} live timers");
        }

        Assert.False(queue.TryTakeDue(long.MaxValue, out _));
    }

    [Fact]
    public void DueTimersComeInDeadlineOrderAndStaleOnesAreSkipped()
    {
        var a = new Timed { Deadline = 30 };
        var b = new Timed { Deadline = 10 };
        var c = new Timed { Deadline = 20 };
        var queue = new DeadlineQueue<Timed>(static (item, deadline) => !item.Dead && item.Deadline == deadline);
        queue.Add(a, 30, 3);
        queue.Add(b, 10, 3);
        queue.Add(c, 20, 3);
        c.Deadline = 40; // re-armed: the entry at 20 is stale
        queue.Add(c, 40, 3);
        Assert.Equal(10, queue.NextDeadline);
        Assert.True(queue.TryTakeDue(35, out Timed first));
        Assert.Same(b, first);
        Assert.True(queue.TryTakeDue(35, out Timed second));
        Assert.Same(a, second);
        Assert.False(queue.TryTakeDue(35, out _));
        Assert.True(queue.TryTakeDue(40, out Timed third));
        Assert.Same(c, third);
    }

    [Fact]
    public void TxBufferGrowsWithItsContentAndChargesTheBudget()
    {
        var budget = new BufferBudget(96 * 1024);
        var buffer = new TxBuffer(1 << 20, maxBoundaries: 0, budget);
        byte[] data = Helpers.Pattern(40 * 1024, 1);
        VsockPacket packet = Packet(data);
        Assert.Equal(TxAppendResult.Appended, buffer.Append(packet, 0, 1000));
        Assert.InRange(budget.Used, 1000, 16 * 1024);
        Assert.Equal(TxAppendResult.Appended, buffer.Append(packet, 1000, data.Length - 1000));
        Assert.InRange(budget.Used, data.Length, 64 * 1024);

        // Growing past the budget fails without losing what is held.
        Assert.Equal(TxAppendResult.OverBudget, buffer.Append(packet, 0, data.Length));
        var sink = new CollectingEndpoint();
        Assert.Equal(EndpointStatus.Ok, buffer.Flush(sink, out int written));
        Assert.Equal(data.Length, written);
        Assert.Equal(data, sink.Bytes.ToArray());
        Assert.Equal(0, budget.Used);
    }

    [Fact]
    public void TxBufferKeepsByteOrderWhenItGrowsAcrossTheRingsEnd()
    {
        var budget = new BufferBudget(1 << 20);
        var buffer = new TxBuffer(256 * 1024, maxBoundaries: 0, budget);
        byte[] data = Helpers.Pattern(64 * 1024, 2);
        VsockPacket packet = Packet(data);
        var sink = new CollectingEndpoint { Limit = 12 * 1024 };
        Assert.Equal(TxAppendResult.Appended, buffer.Append(packet, 0, 14 * 1024));
        Assert.Equal(EndpointStatus.WouldBlock, buffer.Flush(sink, out _)); // head moves to 12 KiB
        Assert.Equal(TxAppendResult.Appended, buffer.Append(packet, 14 * 1024, 10 * 1024)); // wraps in 16 KiB, then grows
        Assert.Equal(TxAppendResult.Appended, buffer.Append(packet, 24 * 1024, 40 * 1024));
        sink.Limit = int.MaxValue;
        Assert.Equal(EndpointStatus.Ok, buffer.Flush(sink, out _));
        Assert.Equal(data, sink.Bytes.ToArray());
        Assert.Equal(0, budget.Used);
    }

    [Fact]
    public async Task ConnectionsPastTheDeviceBufferLimitAreResetAndTheOthersKeepTheirBytes()
    {
        // 64 KiB of credit per connection, a 4 KiB host buffer that nobody reads, and room for two connections' worth.
        using var harness = new Harness(new VsockDeviceOptions { BufferSize = 64 * 1024, MaxBufferedBytes = 128 * 1024 }, hostBufferSize: 4096);
        using VsockListener listener = harness.Backend.Listen(Port);
        byte[] payload = Helpers.Pattern(60 * 1024, 3);
        var guests = new List<GuestSocket>();
        var hosts = new List<VsockStream>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                guests.Add(await harness.Guest.ConnectAsync(Port, cancellationToken: Token));
                hosts.Add(await listener.AcceptAsync(Token));
                _ = guests[i].SendAsync(payload, Token);
                if (i < 2)
                {
                    long expected = (i + 1) * (long)(payload.Length - 4096);
                    await Harness.WaitUntil(
                        () => harness.Metrics.TxBytes >= (i + 1) * (long)payload.Length && harness.Metrics.BufferedBytes >= expected,
                        20_000,
                        $"connection {i} sent everything and the device buffers it (buffered {harness.Metrics.BufferedBytes}, expected at least {expected})");
                }
            }

            await Harness.WaitUntil(() => guests[2].WasReset, 20_000, "the connection past the limit is reset");
            Assert.Equal(1, harness.Metrics.BufferLimitResets);
            Assert.True(harness.Metrics.BufferedBytes <= 128 * 1024);

            // The first two lose nothing.
            for (int i = 0; i < 2; i++)
            {
                Assert.Equal(payload, await Helpers.ReadExactly(hosts[i], payload.Length, Token));
            }

            await Harness.WaitUntil(() => harness.Metrics.BufferedBytes == 0, 20_000, "buffers returned once the host read them");
        }
        finally
        {
            foreach (VsockStream host in hosts)
            {
                await host.DisposeAsync();
            }
        }
    }

    private static VsockPacket Packet(byte[] data)
    {
        var header = new byte[VsockHeader.Size];
        new VsockHeader { Len = (uint)data.Length, Op = VsockOp.Rw, Type = VsockType.Stream }.Write(header);
        return VsockPacket.FromBuffers(header, data);
    }

    private sealed class Timed
    {
        public long Deadline;
        public bool Dead;
    }

    private sealed class CollectingEndpoint : IVsockEndpoint
    {
        public MemoryStream Bytes { get; } = new();

        public int Limit { get; set; } = int.MaxValue;

        public EndpointResult Write(ReadOnlySpan<byte> data, SeqPacketFlags boundary)
        {
            int take = (int)Math.Min(data.Length, Limit - Bytes.Length);
            if (take <= 0 && data.Length > 0)
            {
                return EndpointResult.WouldBlock;
            }

            Bytes.Write(data[..take]);
            return EndpointResult.Ok(take);
        }

        public void Start(IVsockEndpointEvents events) => throw new NotSupportedException();

        public EndpointResult Write(VsockPacket packet, int offset, SeqPacketFlags boundary) => throw new NotSupportedException();

        public EndpointResult Read(VsockPacket packet, int maxBytes) => throw new NotSupportedException();

        public void RequestReadable() => throw new NotSupportedException();

        public void RequestWritable() => throw new NotSupportedException();

        public void ShutdownSend() => throw new NotSupportedException();

        public void Close(bool abort) => throw new NotSupportedException();
    }
}
