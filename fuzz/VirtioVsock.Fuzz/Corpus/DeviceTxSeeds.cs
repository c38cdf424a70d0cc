using Virtio.Vsock;

namespace VirtioVsock.Fuzz.Corpus;

/// <summary>Seeds for <c>device-tx</c>: whole stream and seqpacket conversations in every TX layout, hostile
/// raw chains, host-initiated connects, RX starvation and transport resets.</summary>
internal static class DeviceTxSeeds
{
    public static IReadOnlyList<(string Name, byte[] Data)> All()
    {
        byte[] data = [.. Enumerable.Range(0, 700).Select(i => (byte)(i * 7))];
        const int Write = 0;
        const int Read = 1;
        const int HalfClose = 2;
        const int Close = 3;
        const int Message = 4;
        return
        [
            ("stream-conversation", new DeviceScript(0x10)
                .Packet(VsockOp.Request)
                .Drain()
                .Host(Write, bytes: 3000)
                .Packet(VsockOp.Rw, payload: data)
                .Packet(VsockOp.Rw, payload: data, layout: 1)
                .Packet(VsockOp.Rw, payload: data, layout: 2, piece: 99)
                .Packet(VsockOp.Rw, payload: data, layout: 3)
                .Packet(VsockOp.Rw, payload: data, layout: 4)
                .Packet(VsockOp.Rw, payload: data, layout: 5)
                .Host(Read)
                .Packet(VsockOp.CreditUpdate, fwdCnt: 3000, bufAlloc: 256 * 1024)
                .Packet(VsockOp.CreditRequest)
                .Host(HalfClose)
                .Packet(VsockOp.Shutdown, flags: 3)
                .Drain()
                .Packet(VsockOp.Rst)
                .Build()),
            ("seqpacket-conversation", new DeviceScript(0x00)
                .Packet(VsockOp.Request, VsockType.SeqPacket, hostPort: 1)
                .Drain()
                .Host(Message, bytes: 500, endOfRecord: true)
                .Packet(VsockOp.Rw, VsockType.SeqPacket, hostPort: 1, payload: data, flags: 1)
                .Packet(VsockOp.Rw, VsockType.SeqPacket, hostPort: 1, payload: data[..10], flags: 3, layout: 1)
                .Host(Read)
                .Host(Close)
                .Drain()
                .Build()),
            ("hostile-raw-chains", new DeviceScript(0x08)
                .Packet(VsockOp.Request, guestPort: 1)
                .RawChain(false, w => w.U8(0).U16(0x100).U16(16), 1)
                .RawChain(false, w => w.U8(1).U64(0x10).U16(64), 1)
                .RawChain(false, w => w.U8(8).U16(0x200).U16(64), 1)
                .RawChain(false, w => w.U8(0).U16(0x300).U16(44).U8(1).U64(0xffff_ffff_ffff_fff0).U16(32), 2)
                .RawChain(false, w => w.U8(0).U16(0x400).U16(44), 1, corrupt: 1, corruption: w => w.U16(1).U16(0))
                .RawChain(true, w => w.U8(0).U16(0x500).U16(44).U8(0).U16(0x600).U16(64), 2, corrupt: 2, corruption: w => w.U8(1).U16(5).U16(1))
                .Packet(VsockOp.Rw, guestPort: 1, payload: data[..40], layout: 6)
                .Packet(VsockOp.Rw, guestPort: 1, payload: data[..40], layout: 7)
                .Drain()
                .Build()),
            ("lying-headers", new DeviceScript(0x03)
                .RawHeader(new VsockHeader { SrcCid = 3, DstCid = 2, SrcPort = 1000, DstPort = 5000, Type = VsockType.Stream, Op = VsockOp.Request, BufAlloc = 1 }, [])
                .RawHeader(new VsockHeader { SrcCid = 3, DstCid = 2, SrcPort = 1000, DstPort = 5000, Type = VsockType.Stream, Op = VsockOp.Rw, Len = 100_000, BufAlloc = 1 }, data)
                .RawHeader(new VsockHeader { SrcCid = 7, DstCid = 2, SrcPort = 1000, DstPort = 5000, Type = VsockType.Stream, Op = VsockOp.Rw, BufAlloc = 1 }, data[..5])
                .RawHeader(new VsockHeader { SrcCid = 3, DstCid = 9, SrcPort = 1000, DstPort = 5000, Type = (VsockType)7, Op = VsockOp.Request }, [])
                .RawHeader(new VsockHeader { SrcCid = 3, DstCid = 2, SrcPort = 1000, DstPort = 5000, Type = VsockType.Stream, Op = VsockOp.Rw, Len = 10, BufAlloc = 1 }, data[..100], layout: 2)
                .Drain()
                .Build()),
            ("host-connect-and-starved-rx", new DeviceScript(0x84)
                .Connect(2)
                .Connect(3, seqpacket: true)
                .Guest(0)
                .Packet(VsockOp.Request, guestPort: 4)
                .Packet(VsockOp.Rw, guestPort: 5, payload: data[..100])
                .Packet(VsockOp.Rw, guestPort: 6, payload: data[..100])
                .Packet(VsockOp.Rw, guestPort: 7, payload: data[..100])
                .Guest(3, 1)
                .Guest(2)
                .Guest(0)
                .Drain()
                .Host(Write, bytes: 5000)
                .Guest(1)
                .Packet(VsockOp.Request, guestPort: 4)
                .Drain()
                .Build()),
        ];
    }
}
