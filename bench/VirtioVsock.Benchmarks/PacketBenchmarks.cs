using BenchmarkDotNet.Attributes;
using Virtio.Memory;
using Virtio.Queue;
using Virtio.Queue.Testing;
using Virtio.Vsock;

namespace VirtioVsock.Benchmarks;

/// <summary>
/// Vsock packet parsing, set up exactly like the rust-vmm virtio-vsock reference figures: 16 MiB of guest
/// memory at 0; a 256-entry queue (descriptor table 0x0, available ring 0x1000, used ring 0x2000); 128
/// chains, chain k's buffer at B = 0x10_0000 + k * 0x2000; two-descriptor chains {B, 44} + {B + 0x1000, 4096}
/// or one-descriptor chains {B, 4140}; TX header src_cid 3, dst_cid 2, src_port 1024, dst_port 1234,
/// len 4096, type 1, op 5, buf_alloc 65536; max_data_size 65536. Results are per packet.
/// </summary>
/// <remarks>
/// As in <see cref="QueueBenchmarks"/>, the available ring holds the 128 heads twice over, so each
/// invocation republishes the batch with one <c>avail.idx</c> store. "Parse only" parses copies of chains
/// popped once in the setup.
/// </remarks>
[MemoryDiagnoser]
public class PacketBenchmarks
{
    private const int Chains = 128;
    private const ushort QueueSize = 256;
    private const uint MaxData = 65536;

    private readonly VsockPacket _packet = new();
    private readonly byte[] _payload = new byte[4096];
    private GuestMemory _memory = null!;
    private TestDriver _driver = null!;
    private VirtQueue _queue = null!;
    private DescriptorChain[] _popped = null!;

    /// <summary>The workload: TX with 2 or 1 descriptors, or RX with 2.</summary>
    [Params("TX 2-desc", "TX 1-desc", "RX 2-desc")]
    public string Layout { get; set; } = "TX 2-desc";

    private bool Rx => Layout.StartsWith("RX", StringComparison.Ordinal);

    /// <summary>Builds memory, queue, headers and chains.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _memory = GuestMemory.CreateAnonymous(new GuestAddress(0), 16 << 20);
        var layout = new QueueLayout(QueueSize, new GuestAddress(0x0), new GuestAddress(0x1000), new GuestAddress(0x2000));
        _driver = new TestDriver(_memory, layout);
        _queue = new VirtQueue(QueueSize);
        _driver.Configure(_queue);
        var header = new VsockHeader
        {
            SrcCid = 3, DstCid = 2, SrcPort = 1024, DstPort = 1234, Len = 4096,
            Type = VsockType.Stream, Op = VsockOp.Rw, BufAlloc = 65536,
        };
        byte[] raw = new byte[VsockHeader.Size];
        header.Write(raw);
        new Random(1).NextBytes(_payload);

        for (int k = 0; k < Chains; k++)
        {
            ulong b = 0x10_0000 + ((ulong)k * 0x2000);
            _memory.Write(new GuestAddress(b), raw).ThrowIfError(new GuestAddress(b));
            ushort head = Layout switch
            {
                "TX 2-desc" => _driver.AddChain(TestBuffer.DeviceReadable(b, 44), TestBuffer.DeviceReadable(b + 0x1000, 4096)),
                "TX 1-desc" => _driver.AddChain(TestBuffer.DeviceReadable(b, 4140)),
                _ => _driver.AddChain(TestBuffer.DeviceWritable(b, 44), TestBuffer.DeviceWritable(b + 0x1000, 4096)),
            };
            _driver.WriteAvailEntry((ushort)(k + Chains), head);
        }

        // Pop every chain once, for the parse-only case, then rewind the device to the start.
        _driver.SetAvailIndex(Chains);
        _popped = new DescriptorChain[Chains];
        for (int k = 0; k < Chains; k++)
        {
            if (!_queue.TryPopChain(_memory, out _popped[k], out QueueError error))
            {
                throw new InvalidOperationException(error.Describe());
            }
        }

        _queue.NextAvail = Chains;
        _driver.SetAvailIndex(Chains);
    }

    /// <summary>Releases the guest memory.</summary>
    [GlobalCleanup]
    public void Cleanup() => _memory.Dispose();

    /// <summary>Pop + parse (+ RX: nine setters and a 4 KiB payload copy) + add used.</summary>
    /// <returns>A checksum of what was parsed, so nothing is optimized away.</returns>
    [Benchmark(Baseline = true, OperationsPerInvoke = Chains)]
    public ulong PopParseAddUsed()
    {
        GuestMemory memory = _memory;
        VirtQueue queue = _queue;
        VsockPacket packet = _packet;
        bool rx = Rx;
        _driver.SetAvailIndex((ushort)(_driver.AvailIndex + Chains));
        ulong sum = 0;
        while (queue.TryPopChain(memory, out DescriptorChain chain, out _))
        {
            uint used = 0;
            if (rx)
            {
                if (!packet.TryParseRx(memory, ref chain, MaxData).IsError)
                {
                    packet.SetSrcCid(2)
                        .SetDstCid(3)
                        .SetSrcPort(1234)
                        .SetDstPort(1024)
                        .SetType(VsockType.Stream)
                        .SetOp(VsockOp.Rw)
                        .SetBufAlloc(65536)
                        .SetFwdCnt(0)
                        .SetLen(4096);
                    packet.CopyDataFrom(_payload);
                    used = VsockHeader.Size + 4096;
                }
            }
            else if (!packet.TryParseTx(memory, ref chain, MaxData).IsError)
            {
                sum += packet.Len;
            }

            queue.AddUsed(memory, chain.HeadIndex, used);
            sum += used;
        }

        return sum;
    }

    /// <summary>Parse only, from chains popped in the setup.</summary>
    /// <returns>A checksum of what was parsed.</returns>
    [Benchmark(OperationsPerInvoke = Chains)]
    public ulong ParseOnly()
    {
        GuestMemory memory = _memory;
        VsockPacket packet = _packet;
        DescriptorChain[] popped = _popped;
        bool rx = Rx;
        ulong sum = 0;
        for (int k = 0; k < popped.Length; k++)
        {
            DescriptorChain chain = popped[k];
            VsockPacketError error = rx ? packet.TryParseRx(memory, ref chain, MaxData) : packet.TryParseTx(memory, ref chain, MaxData);
            sum += error.IsError ? 0 : (ulong)packet.DataCapacity;
        }

        return sum;
    }
}
