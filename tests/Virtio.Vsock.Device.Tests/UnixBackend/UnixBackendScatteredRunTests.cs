using System.Collections.Concurrent;
using System.Net.Sockets;
using Virtio.Memory;
using Virtio.Queue.Testing;
using Virtio.Vsock.Device.Tests.Reliability;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.UnixBackend;

/// <summary>
/// A TX run through the Unix backend with a packet whose payload lies in more guest buffers than one <c>sendmsg</c> of
/// the endpoint gathers (64; a guest may chain any number of small payload descriptors): the endpoint sends that packet
/// in parts, and the host socket gets every byte in order, with the ordinary packets before and after it in the same
/// run. When the socket fills during the parts, what it did not take is buffered by the device and delivered later,
/// in order, ahead of data the guest sends after. <c>fwd_cnt</c> counts exactly what the socket took.
/// </summary>
/// <remarks>The guest is raw (hand-built TX chains on a claimed port): its payload buffers lie in guest memory in the
/// reverse of chain order with junk between them, so only a write that follows the chain, part after part, gives the
/// host the pattern in order.</remarks>
public sealed class UnixBackendScatteredRunTests
{
    private const uint GuestPort = 9500;
    private const uint HostPort = 6500;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory(Timeout = 60_000)]
    [InlineData(65)]
    [InlineData(100)]
    [InlineData(128)]
    [InlineData(129)]
    [InlineData(200)]
    public async Task APacketOverMoreThan64BuffersReachesTheHostWholeAndInOrderWithinItsRun(int buffers)
    {
        await using Connection c = await Connection.OpenAsync(patternBytes: 1 << 20);
        int[] scattered = [.. Enumerable.Range(0, buffers).Select(i => 1 + (i * 37 % 300))];

        int run = await c.PostAsync([1000], [1], [4096], [333], scattered, [2048], [7], [999]);

        // One write took the whole run: the 8 packets, the scattered one in all its buffers.
        RunWrite write = Assert.Single(c.Endpoint.Writes);
        Assert.Equal(8, write.Packets);
        Assert.Equal(buffers, write.MostBuffers);
        Assert.Equal(run, write.Offered);
        Assert.Equal(EndpointResult.Ok(run), write.Result);
        await c.AssertFwdCntAsync(run);

        c.AssertReceived(await c.ReceiveAsync(run));
        c.AssertHealthy();
    }

    [Theory(Timeout = 60_000)]
    [InlineData(false)]
    [InlineData(true)]
    public async Task WhatAFullSocketDidNotTakeOfAScatteredPacketIsDeliveredLaterInOrder(bool fullInTheRest)
    {
        // The host reads nothing until the end. Sizes follow the socket's send buffer (an AF_UNIX stream holds about
        // that much): the run's first 64 payload buffers fit in the socket after the prefill, and the packet does
        // not; it fills either in the sendmsg of the first 64 buffers or in the one of the other 36.
        int sendBuffer = DefaultUnixSendBuffer();
        int head = fullInTheRest ? sendBuffer / 256 : sendBuffer / 16;
        int tail = fullInTheRest ? (sendBuffer / 12) + 1 : 100;
        int[] scattered = [.. Enumerable.Repeat(head, 64), .. Enumerable.Repeat(tail, 36)];
        await using Connection c = await Connection.OpenAsync(patternBytes: (6 * sendBuffer) + (1 << 20));

        int prefill = await c.PostAsync([sendBuffer / 16], [sendBuffer / 16], [sendBuffer / 16], [sendBuffer / 16]);
        Assert.Equal(EndpointResult.Ok(prefill), Assert.Single(c.Endpoint.Writes).Result);

        const int Before = 1024 + 3000;
        int run = await c.PostAsync([1024], [3000], scattered, [2048], [5]);
        Assert.Equal(2, c.Endpoint.Writes.Count);
        RunWrite split = c.Endpoint.Writes[1];
        Assert.Equal((5, 100, run), (split.Packets, split.MostBuffers, split.Offered));
        Assert.Equal(EndpointStatus.Ok, split.Result.Status);
        int taken = split.Result.Bytes;
        if (fullInTheRest)
        {
            // The first 64 buffers went out whole; the socket filled in the rest's sendmsg.
            Assert.InRange(taken, Before + (64 * head), Before + scattered.Sum() - 1);
        }
        else
        {
            Assert.InRange(taken, Before + 1, Before + (64 * head) - 1);
        }

        await c.AssertFwdCntAsync(prefill + taken);

        // Data the guest sends now waits behind the rest of the packet (no run write: the device holds bytes).
        int later = await c.PostAsync([4096], [100], [7]);
        Assert.Equal(2, c.Endpoint.Writes.Count);
        await c.AssertFwdCntAsync(prefill + taken);

        int total = prefill + run + later;
        c.AssertReceived(await c.ReceiveAsync(total));
        await c.AssertFwdCntAsync(total);
        c.AssertHealthy();
    }

    /// <summary>The send buffer a new AF_UNIX stream socket gets (<c>net.core.wmem_default</c>).</summary>
    private static int DefaultUnixSendBuffer()
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        return socket.SendBufferSize;
    }

    private static VsockHeader Header(VsockOp op, int len = 0) => new()
    {
        SrcCid = 3,
        DstCid = VsockCid.Host,
        SrcPort = GuestPort,
        DstPort = HostPort,
        Type = VsockType.Stream,
        Op = op,
        Len = (uint)len,
        BufAlloc = 256 * 1024,
    };

    /// <summary>One <c>Write(packets)</c> the device asked of the endpoint: how many packets, the most payload buffers
    /// one of them had, the bytes offered, and the endpoint's answer.</summary>
    private readonly record struct RunWrite(int Packets, int MostBuffers, int Offered, EndpointResult Result);

    /// <summary>A raw guest connection to a host program on a real Unix socket, and a pattern the guest sends.</summary>
    private sealed class Connection : IAsyncDisposable
    {
        // Junk between scattered payload buffers: a write that strays past a buffer sends it.
        private const int Gap = 48;

        private readonly UnixBackendHarness _harness;
        private readonly EndpointWrappingBackend<RecordingEndpoint> _backend;
        private readonly Socket _listener;
        private readonly byte[] _pattern;
        private Socket _host = null!;
        private int _sent;

        private Connection(UnixBackendHarness harness, EndpointWrappingBackend<RecordingEndpoint> backend, Socket listener, int patternBytes)
        {
            _harness = harness;
            _backend = backend;
            _listener = listener;
            _pattern = Helpers.Pattern(patternBytes, patternBytes);
        }

        public RecordingEndpoint Endpoint => Assert.Single(_backend.Endpoints);

        public static async Task<Connection> OpenAsync(int patternBytes)
        {
            EndpointWrappingBackend<RecordingEndpoint>? backend = null;
            var harness = new UnixBackendHarness(
                new VsockDeviceOptions { BufferSize = 16 << 20, MaxPacketData = 16 << 20 },
                new GuestSimulatorOptions { MaxTxPayload = 4096 },
                wrapBackend: inner => backend = new EndpointWrappingBackend<RecordingEndpoint>(inner, endpoint => new RecordingEndpoint(endpoint)));
            var connection = new Connection(harness, backend!, harness.ListenOnHostPort(HostPort), patternBytes);
            try
            {
                Task<Socket> accept = connection._listener.AcceptAsync(Token).AsTask();
                harness.Guest.ClaimRawPort(GuestPort);
                harness.Guest.SendRaw(Header(VsockOp.Request));
                Assert.NotNull(await harness.Guest.WaitRawAsync(h => h.DstPort == GuestPort && h.Op == VsockOp.Response, TimeSpan.FromSeconds(20)));
                connection._host = await accept.WaitAsync(TimeSpan.FromSeconds(20), Token);
                await Harness.WaitUntil(() => harness.Guest.OutstandingTxChains == 0, 20_000, "the REQUEST chain returned");
                return connection;
            }
            catch
            {
                await connection.DisposeAsync();
                throw;
            }
        }

        /// <summary>
        /// Posts RW packets as one TX batch (one kick) and waits until the device returned their chains. Each packet is
        /// its payload buffers' sizes: one size is one descriptor for header and payload, several are a header
        /// descriptor and a payload descriptor each. The payloads are the next bytes of the pattern.
        /// </summary>
        /// <returns>The payload bytes posted.</returns>
        public async Task<int> PostAsync(params int[][] packets)
        {
            int start = _sent;
            GuestMemory memory = _harness.Guest.Memory;
            byte[] header = new byte[VsockHeader.Size];
            byte[] junk = new byte[Gap];
            junk.AsSpan().Fill(0xEE);
            _harness.Guest.PostRawTxChain((driver, allocator) =>
            {
                foreach (int[] sizes in packets)
                {
                    int len = sizes.Sum();
                    Header(VsockOp.Rw, len).Write(header);
                    if (sizes.Length == 1)
                    {
                        GuestAddress at = allocator.Allocate((ulong)(VsockHeader.Size + len));
                        Assert.Equal(MemoryError.None, memory.Write(at, header));
                        Assert.Equal(MemoryError.None, memory.Write(at.CheckedAdd(VsockHeader.Size), Next(len)));
                        driver.AddChain(TestBuffer.DeviceReadable(at, (uint)(VsockHeader.Size + len)));
                        continue;
                    }

                    var buffers = new TestBuffer[sizes.Length + 1];
                    GuestAddress headerAt = allocator.Allocate(VsockHeader.Size);
                    Assert.Equal(MemoryError.None, memory.Write(headerAt, header));
                    buffers[0] = TestBuffer.DeviceReadable(headerAt, VsockHeader.Size);
                    var places = new GuestAddress[sizes.Length];
                    for (int i = sizes.Length - 1; i >= 0; i--)
                    {
                        places[i] = allocator.Allocate((ulong)(sizes[i] + Gap));
                        Assert.Equal(MemoryError.None, memory.Write(places[i].CheckedAdd((ulong)sizes[i]), junk));
                    }

                    for (int i = 0; i < sizes.Length; i++)
                    {
                        Assert.Equal(MemoryError.None, memory.Write(places[i], Next(sizes[i])));
                        buffers[i + 1] = TestBuffer.DeviceReadable(places[i], (uint)sizes[i]);
                    }

                    driver.AddChain(buffers);
                }
            });
            await Harness.WaitUntil(() => _harness.Guest.OutstandingTxChains == 0, 20_000, "the device returned the batch's chains");
            return _sent - start;
        }

        /// <summary>Reads exactly <paramref name="count"/> bytes from the host socket.</summary>
        public async Task<byte[]> ReceiveAsync(int count)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Token);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            byte[] received = new byte[count];
            int got = 0;
            while (got < count)
            {
                int n = await _host.ReceiveAsync(received.AsMemory(got), SocketFlags.None, timeout.Token);
                Assert.True(n > 0, $"the host socket ended after {got} of {count} bytes");
                got += n;
            }

            return received;
        }

        /// <summary>The host received exactly what the guest sent, in order.</summary>
        public void AssertReceived(byte[] received)
        {
            ReadOnlySpan<byte> sent = _pattern.AsSpan(0, _sent);
            int same = sent.CommonPrefixLength(received);
            Assert.True(same == sent.Length && received.Length == sent.Length, $"the host's bytes differ from the guest's at byte {same} of {sent.Length}");
        }

        /// <summary>Asks for credit (CREDIT_REQUEST) and waits for the device's <c>fwd_cnt</c> to be <paramref name="expected"/>; it never passed it.</summary>
        public async Task AssertFwdCntAsync(int expected)
        {
            int seen = _harness.Guest.RawReceived.Count;
            _harness.Guest.SendRaw(Header(VsockOp.CreditRequest));
            await Harness.WaitUntil(
                () => _harness.Guest.RawReceived.Skip(seen).Any(h => h.Op == VsockOp.CreditUpdate && h.FwdCnt == (uint)expected),
                20_000,
                $"a CREDIT_UPDATE with fwd_cnt {expected}");
            uint most = _harness.Guest.RawReceived.Max(h => h.FwdCnt);
            Assert.True(most <= (uint)expected, $"fwd_cnt {most} counted more than the host took ({expected})");
        }

        /// <summary>The connection is up: no RST, no credit violation, no failed host write.</summary>
        public void AssertHealthy()
        {
            Assert.DoesNotContain(_harness.Guest.RawReceived, h => h.Op == VsockOp.Rst);
            Assert.Equal(0, _harness.Device.Metrics.CreditViolations);
            Assert.Equal(0, _harness.Device.Metrics.HostWriteErrors);
            Assert.Equal(1, _harness.Device.ConnectionCount);
        }

        public async ValueTask DisposeAsync()
        {
            _host?.Dispose();
            _listener.Dispose();
            await _harness.DisposeAsync();
        }

        private ReadOnlySpan<byte> Next(int count)
        {
            ReadOnlySpan<byte> bytes = _pattern.AsSpan(_sent, count);
            _sent += count;
            return bytes;
        }
    }

    /// <summary>Passes everything to the Unix endpoint and records each run write (<c>Write(packets)</c>).</summary>
    private sealed class RecordingEndpoint(IVsockEndpoint inner) : IVsockEndpoint
    {
        private readonly ConcurrentQueue<RunWrite> _writes = new();

        public IReadOnlyList<RunWrite> Writes => [.. _writes];

        public bool WritesFromManyPackets => inner.WritesFromManyPackets;

        public bool ReadsIntoManyPackets => inner.ReadsIntoManyPackets;

        public void Start(IVsockEndpointEvents events) => inner.Start(events);

        public EndpointResult Write(ReadOnlySpan<VsockPacket> packets)
        {
            int offered = 0;
            int mostBuffers = 0;
            foreach (VsockPacket packet in packets)
            {
                offered += (int)packet.Len;
                int buffers = 0;
                DataSpanEnumerator spans = packet.GetDataSpans(0, (int)packet.Len);
                while (spans.MoveNext())
                {
                    buffers++;
                }

                mostBuffers = Math.Max(mostBuffers, buffers);
            }

            EndpointResult result = inner.Write(packets);
            _writes.Enqueue(new RunWrite(packets.Length, mostBuffers, offered, result));
            return result;
        }

        public EndpointResult Write(VsockPacket packet, int offset, SeqPacketFlags boundary) => inner.Write(packet, offset, boundary);

        public EndpointResult Write(ReadOnlySpan<byte> data, SeqPacketFlags boundary) => inner.Write(data, boundary);

        public EndpointResult Read(VsockPacket packet, int maxBytes) => inner.Read(packet, maxBytes);

        public EndpointResult Read(ReadOnlySpan<VsockPacket> packets, int maxBytes) => inner.Read(packets, maxBytes);

        public void RequestReadable() => inner.RequestReadable();

        public void RequestWritable() => inner.RequestWritable();

        public void ShutdownSend() => inner.ShutdownSend();

        public void ShutdownReceive() => inner.ShutdownReceive();

        public void Close(bool abort) => inner.Close(abort);
    }
}
