using Virtio.Memory;
using Virtio.Queue.Testing;
using Virtio.Vsock;
using VsockLoad.Guest;
using VsockLoad.Report;

namespace VhostUserVsock.Tests.LoadGenerator;

/// <summary>
/// The load generator's guest driver against a device that breaks the rules on purpose: this test
/// writes the used ring by hand (as a buggy backend would) and checks that each broken rule is counted
/// as its violation, so a clean run of the benchmark means something.
/// </summary>
public sealed class GuestDriverCheckTests : IDisposable
{
    private const ulong Cid = 3;
    private const uint GuestPort = 7000;
    private const uint HostPort = 40000;
    private readonly GuestMemory _memory = GuestMemory.CreateAnonymous(new GuestAddress(0), GuestLayout.MemorySize);
    private readonly TestDriver _rx;
    private readonly Checks _checks = new();
    private readonly VsockGuest _guest;
    private ushort _used;

    public GuestDriverCheckTests()
    {
        _rx = new TestDriver(_memory, QueueLayout.At(GuestLayout.RxQueue, GuestLayout.QueueSize), eventIdx: false, indirectDescriptors: false);
        var tx = new TestDriver(_memory, QueueLayout.At(GuestLayout.TxQueue, GuestLayout.QueueSize), eventIdx: false, indirectDescriptors: false);
        _guest = new VsockGuest(new GuestQueues(_memory, _rx, tx, -1, -1, Cid), new AcceptAll(), _checks);
    }

    [Fact]
    public void AWellFormedConnectionAndDataAreClean()
    {
        Deliver(Header(VsockOp.Request, 0), []);
        Deliver(Header(VsockOp.Rw, 100), Payload(0, 100));

        Assert.Equal(0, _checks.Total);
        Assert.Equal(100, _checks.CheckedBytes);
    }

    [Fact]
    public void AnRxBufferWithoutAHeaderIsAViolation()
    {
        Deliver(Header(VsockOp.Request, 0), [], usedLength: 10);

        Assert.Equal(1, _checks.Count(Violation.RxWithoutHeader));
    }

    [Fact]
    public void AnInvalidOpAndAWrongCidAreViolations()
    {
        Deliver(Header((VsockOp)9, 0), []);
        Deliver(Header(VsockOp.Request, 0) with { DstCid = Cid + 1 }, []);

        Assert.Equal(1, _checks.Count(Violation.InvalidOp));
        Assert.Equal(1, _checks.Count(Violation.BadCid));
    }

    [Fact]
    public void DataForAnUnknownConnectionIsAViolation()
    {
        Deliver(Header(VsockOp.Rw, 10), Payload(0, 10));

        Assert.Equal(1, _checks.Count(Violation.UnknownConnection));
    }

    [Fact]
    public void DataBeyondTheAdvertisedCreditIsAViolation()
    {
        Deliver(Header(VsockOp.Request, 0), []);
        long offset = 0;
        for (int i = 0; i < 64; i++) // exactly buf_alloc (256 KiB): allowed, the guest has not sent an update yet
        {
            Deliver(Header(VsockOp.Rw, 4096), Payload(offset, 4096));
            offset += 4096;
        }

        Assert.Equal(0, _checks.Total);
        Deliver(Header(VsockOp.Rw, 1), Payload(offset, 1));

        Assert.Equal(1, _checks.Count(Violation.CreditOverrun));
    }

    [Fact]
    public void ACorruptedByteAndALengthMismatchAreViolations()
    {
        Deliver(Header(VsockOp.Request, 0), []);
        byte[] payload = Payload(0, 64);
        payload[40] ^= 0xff;
        Deliver(Header(VsockOp.Rw, 64), payload);
        Deliver(Header(VsockOp.Rw, 10), Payload(64, 10), usedLength: VsockHeader.Size + 20);

        Assert.Equal(1, _checks.Count(Violation.DataMismatch));
        Assert.Equal(1, _checks.Count(Violation.RxLengthMismatch));
    }

    public void Dispose() => _memory.Dispose();

    private static VsockHeader Header(VsockOp op, uint length) => new()
    {
        SrcCid = VsockGuest.HostCid,
        DstCid = Cid,
        SrcPort = HostPort,
        DstPort = GuestPort,
        Len = length,
        Type = VsockType.Stream,
        Op = op,
        BufAlloc = 65536,
    };

    private static byte[] Payload(long offset, int length)
    {
        byte[] bytes = new byte[length];
        Pattern.Fill(bytes, offset, AcceptAll.Seed);
        return bytes;
    }

    /// <summary>Plays the device: fills the next posted RX buffer, publishes it in the used ring, lets the guest process it.</summary>
    private void Deliver(VsockHeader header, byte[] payload, uint? usedLength = null)
    {
        QueueLayout layout = _rx.Layout;
        _memory.ReadU16(layout.AvailRing.CheckedAdd(4 + (2u * (uint)(_used % layout.Size))), out ushort head).ThrowIfError(layout.AvailRing);
        Virtio.Queue.Descriptor descriptor = _rx.ReadDescriptor(head);
        byte[] packet = new byte[VsockHeader.Size + payload.Length];
        header.Write(packet);
        payload.CopyTo(packet, VsockHeader.Size);
        _memory.Write(descriptor.Address, packet).ThrowIfError(descriptor.Address);
        GuestAddress element = layout.UsedRing.CheckedAdd(4 + (8u * (uint)(_used % layout.Size)));
        _memory.WriteU32(element, head).ThrowIfError(element);
        _memory.WriteU32(element.CheckedAdd(4), usedLength ?? (uint)packet.Length).ThrowIfError(element);
        _used++;
        _memory.StoreU16Release(layout.UsedRing.CheckedAdd(2), _used).ThrowIfError(layout.UsedRing);
        Assert.Equal(1, _guest.ProcessRx());
    }

    private sealed class AcceptAll : IGuestApp
    {
        public const int Seed = 5;

        public GuestConnection? Accept(uint localPort, uint peerPort) => new(localPort, peerPort, 0, Seed);

        public void Established(GuestConnection connection)
        {
        }

        public void Received(GuestConnection connection, int length)
        {
        }

        public void Closed(GuestConnection connection)
        {
        }
    }
}
