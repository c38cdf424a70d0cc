using Virtio.Queue;
using Virtio.Vsock;

namespace VirtioVsock.Fuzz.Corpus;

/// <summary>Seeds for <c>packet-tx</c> and <c>packet-rx</c>: the chain layouts Linux guests send (linear since 6.2,
/// header + data before, scattered since 6.17, indirect), several chains, wrapping indices, split memory.</summary>
internal static class PacketSeeds
{
    private const DescriptorFlags Next = DescriptorFlags.Next;
    private const DescriptorFlags Write = DescriptorFlags.Write;

    public static IReadOnlyList<(string Name, byte[] Data)> Tx()
    {
        byte[] payload = [.. Enumerable.Range(0, 300).Select(i => (byte)i)];
        VsockHeader rw = Header(VsockOp.Rw);
        var seeds = new List<(string, byte[])>();

        var linear = new ImageBuilder(3);
        int packet = linear.Packet(rw, payload);
        seeds.Add(("linear-rw", linear.Descriptor(0, packet, (uint)(VsockHeader.Size + payload.Length)).Avail(0).Build()));

        var split = new ImageBuilder(3);
        packet = split.Packet(rw, payload);
        seeds.Add(("header-and-data", split
            .Descriptor(0, packet, VsockHeader.Size, Next, 5)
            .Descriptor(5, packet + VsockHeader.Size, (uint)payload.Length)
            .Avail(0).Build()));

        var scattered = new ImageBuilder(4);
        packet = scattered.Packet(rw, payload);
        scattered.Descriptor(0, packet, VsockHeader.Size, Next, 1)
            .Descriptor(1, packet + VsockHeader.Size, 100, Next, 2)
            .Descriptor(2, packet + VsockHeader.Size + 100, 0, Next, 3)
            .Descriptor(3, packet + VsockHeader.Size + 100, 200)
            .Avail(0);

        // Two regions meeting in the middle of the payload, and a hole between the second and third.
        seeds.Add(("scattered-across-regions", scattered.Build(layout: 0b0010_1000, split1: (ushort)(packet + 150), split2: 0x7000)));

        var indirect = new ImageBuilder(3);
        packet = indirect.Packet(rw, payload);
        int table = indirect.Buffer([], 32);
        indirect.TableEntry(table, 0, packet, VsockHeader.Size, Next, 1)
            .TableEntry(table, 1, packet + VsockHeader.Size, (uint)payload.Length)
            .Descriptor(2, table, 32, DescriptorFlags.Indirect)
            .Avail(2);
        seeds.Add(("indirect", indirect.Build()));

        // Connection set-up packets, three chains, the ring index wrapping past 65535.
        var several = new ImageBuilder(2, nextAvail: 0xfffe);
        int request = several.Packet(Header(VsockOp.Request), []);
        int credit = several.Packet(Header(VsockOp.CreditUpdate), []);
        int data = several.Packet(rw, payload.AsSpan(0, 16));
        several.Descriptor(0, request, VsockHeader.Size).Descriptor(1, credit, VsockHeader.Size).Descriptor(2, data, VsockHeader.Size + 16)
            .Avail(0).Avail(1).Avail(2);
        seeds.Add(("three-chains-wrapping", several.Build(eventIdx: false)));

        // A header-only packet at the very top of the guest address space.
        var top = new ImageBuilder(0);
        int shutdown = top.Packet(Header(VsockOp.Shutdown) with { Flags = 3 }, []);
        seeds.Add(("top-of-address-space", top.Descriptor(0, shutdown, VsockHeader.Size).Avail(0).Build(layout: 3)));

        // Header split in two descriptors, payload right after in the second (old Linux with small buffers).
        var halves = new ImageBuilder(3);
        packet = halves.Packet(rw, payload.AsSpan(0, 64));
        seeds.Add(("split-header", halves
            .Descriptor(0, packet, 20, Next, 1)
            .Descriptor(1, packet + 20, VsockHeader.Size - 20 + 64)
            .Avail(0).Build(maxDataSelector: 1)));
        return seeds;
    }

    public static IReadOnlyList<(string Name, byte[] Data)> Rx()
    {
        var seeds = new List<(string, byte[])>();

        var linear = new ImageBuilder(3);
        int buffer = linear.Buffer([], VsockHeader.Size + 4096);
        seeds.Add(("linear-4k", linear.Descriptor(0, buffer, VsockHeader.Size + 4096, Write).Avail(0).Build()));

        var split = new ImageBuilder(3);
        int header = split.Buffer([], VsockHeader.Size);
        int data = split.Buffer([], 4096);
        seeds.Add(("header-and-data", split
            .Descriptor(0, header, VsockHeader.Size, Write | Next, 1)
            .Descriptor(1, data, 4096, Write)
            .Avail(0).Build(layout: 0b0000_0100, split1: (ushort)(data + 2048))));

        var indirect = new ImageBuilder(3);
        header = indirect.Buffer([], VsockHeader.Size);
        data = indirect.Buffer([], 1024);
        int table = indirect.Buffer([], 32);
        indirect.TableEntry(table, 0, header, VsockHeader.Size, Write | Next, 1)
            .TableEntry(table, 1, data, 1024, Write)
            .Descriptor(0, table, 32, DescriptorFlags.Indirect)
            .Avail(0);
        seeds.Add(("indirect", indirect.Build()));

        var several = new ImageBuilder(4, nextAvail: 0xfffe);
        for (ushort i = 0; i < 4; i++)
        {
            buffer = several.Buffer([], VsockHeader.Size + 256);
            several.Descriptor(i, buffer, VsockHeader.Size + 256, Write).Avail(i);
        }

        seeds.Add(("four-chains-wrapping", several.Build(eventIdx: false, maxDataSelector: 7)));
        return seeds;
    }

    private static VsockHeader Header(VsockOp op) => new()
    {
        SrcCid = 3,
        DstCid = 2,
        SrcPort = 1000,
        DstPort = 5000,
        Type = VsockType.Stream,
        Op = op,
        BufAlloc = 256 * 1024,
    };
}
