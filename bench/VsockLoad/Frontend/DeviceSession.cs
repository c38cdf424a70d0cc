using System.Buffers.Binary;
using Virtio.Memory;
using Virtio.Queue.Testing;
using VirtioVsock.Fuzz.Vhost;
using VsockLoad.Guest;

namespace VsockLoad.Frontend;

/// <summary>
/// One started vsock device as QEMU plus a Linux driver set it up: features and protocol features
/// negotiated, a memfd-backed guest memory shared with SET_MEM_TABLE, RX (0) and TX (1) rings of 256
/// entries started with kick and call eventfds. Owns the frontend, the memory and the eventfds; the
/// backend sees the guest go away when this is disposed.
/// </summary>
internal sealed class DeviceSession : IDisposable
{
    private const ulong FeatureVersion1 = 1UL << 32;
    private const ulong FeatureEventIdx = 1UL << 29;
    private const ulong FeatureProtocolFeatures = 1UL << 30;
    private const ulong FeatureStream = 1UL << 0;
    private const ulong ProtocolMq = 1UL << 0;
    private const ulong ProtocolReplyAck = 1UL << 3;
    private const ulong ProtocolConfig = 1UL << 9;

    private readonly VhostUserFrontend _frontend;
    private readonly int[] _eventFds = new int[4];

    private DeviceSession(VhostUserFrontend frontend, GuestMemory memory)
    {
        _frontend = frontend;
        Memory = memory;
    }

    /// <summary>The guest memory.</summary>
    public GuestMemory Memory { get; }

    /// <summary>The RX queue's driver.</summary>
    public TestDriver Rx { get; private set; } = null!;

    /// <summary>The TX queue's driver.</summary>
    public TestDriver Tx { get; private set; } = null!;

    /// <summary>Kick eventfd of the RX queue (the driver writes it).</summary>
    public int RxKick => _eventFds[0];

    /// <summary>Call eventfd of the RX queue (the backend writes it).</summary>
    public int RxCall => _eventFds[1];

    /// <summary>Kick eventfd of the TX queue.</summary>
    public int TxKick => _eventFds[2];

    /// <summary>Call eventfd of the TX queue.</summary>
    public int TxCall => _eventFds[3];

    /// <summary>The guest CID the backend reported (GET_CONFIG).</summary>
    public ulong GuestCid { get; private set; }

    /// <summary>The virtio features acked.</summary>
    public ulong Features { get; private set; }

    /// <summary>The queues as the guest driver uses them.</summary>
    public GuestQueues Queues => new(Memory, Rx, Tx, RxKick, TxKick, GuestCid);

    /// <summary>Connects to the backend at <paramref name="socketPath"/> and starts the device.</summary>
    /// <param name="socketPath">The backend's vhost-user socket.</param>
    /// <param name="eventIdx">Negotiate VIRTIO_F_EVENT_IDX (fails when the backend does not offer it).</param>
    /// <param name="connectTimeout">How long the backend may take to listen.</param>
    /// <returns>The started session.</returns>
    public static DeviceSession Start(string socketPath, bool eventIdx, TimeSpan connectTimeout)
    {
        VhostUserFrontend frontend = VhostUserFrontend.Connect(socketPath, connectTimeout);
        GuestMemory? memory = null;
        try
        {
            using (var file = SharedMemoryFile.Create("vsockload-ram", (long)GuestLayout.MemorySize))
            {
                using GuestRegion region = GuestRegion.MapFile(new GuestAddress(0), GuestLayout.MemorySize, (int)file.DangerousGetHandle(), 0);
                memory = GuestMemory.Create(region);

                // A guest that has booted has touched its memory; a fresh memfd has not. Fill it once
                // here so the first 64 MiB of a run do not pay the driver's page allocations.
                _ = memory.Fill(new GuestAddress(0), GuestLayout.MemorySize, 0);
                var session = new DeviceSession(frontend, memory);
                session.Negotiate(eventIdx, (int)file.DangerousGetHandle());
                return session;
            }
        }
        catch
        {
            memory?.Dispose();
            frontend.Dispose();
            throw;
        }
    }

    /// <summary>Signals an eventfd (kick).</summary>
    /// <param name="fd">The eventfd.</param>
    public static unsafe void Signal(int fd)
    {
        ulong one = 1;
        _ = Interop.Sys.Write(fd, (byte*)&one, 8);
    }

    /// <summary>Clears an eventfd (non-blocking read).</summary>
    /// <param name="fd">The eventfd.</param>
    public static unsafe void Drain(int fd)
    {
        ulong value;
        _ = Interop.Sys.Read(fd, (byte*)&value, 8);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _frontend.Dispose();
        foreach (int fd in _eventFds)
        {
            if (fd > 0)
            {
                _ = Interop.Sys.Close(fd);
            }
        }

        Memory.Dispose();
    }

    private void Negotiate(bool eventIdx, int memfd)
    {
        ulong offered = _frontend.GetU64(VhostRequest.GetFeatures);
        if ((offered & FeatureVersion1) == 0)
        {
            throw new IOException($"The backend does not offer VIRTIO_F_VERSION_1 (features 0x{offered:x}).");
        }

        if (eventIdx && (offered & FeatureEventIdx) == 0)
        {
            throw new IOException($"--event-idx: the backend does not offer VIRTIO_F_EVENT_IDX (features 0x{offered:x}).");
        }

        ulong protocol = 0;
        if ((offered & FeatureProtocolFeatures) != 0)
        {
            ulong protocolOffered = _frontend.GetU64(VhostRequest.GetProtocolFeatures);
            protocol = protocolOffered & (ProtocolMq | ProtocolReplyAck | ProtocolConfig);
            _frontend.SetU64(VhostRequest.SetProtocolFeatures, protocol);
            _frontend.ReplyAck = (protocol & ProtocolReplyAck) != 0;
        }

        _frontend.Set(VhostRequest.SetOwner, []);
        GuestCid = (protocol & ProtocolConfig) != 0 ? _frontend.GetGuestCid() : 3;
        Features = offered & (FeatureVersion1 | FeatureProtocolFeatures | FeatureStream | (eventIdx ? FeatureEventIdx : 0));
        _frontend.SetU64(VhostRequest.SetFeatures, Features);

        Span<byte> table = stackalloc byte[8 + 32];
        table.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(table, 1);
        BinaryPrimitives.WriteUInt64LittleEndian(table[8..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(table[16..], GuestLayout.MemorySize);
        BinaryPrimitives.WriteUInt64LittleEndian(table[24..], GuestLayout.UserAddressBase);
        BinaryPrimitives.WriteUInt64LittleEndian(table[32..], 0);
        _frontend.Set(VhostRequest.SetMemTable, table, memfd);

        Rx = new TestDriver(Memory, QueueLayout.At(GuestLayout.RxQueue, GuestLayout.QueueSize), eventIdx, indirectDescriptors: false);
        Tx = new TestDriver(Memory, QueueLayout.At(GuestLayout.TxQueue, GuestLayout.QueueSize), eventIdx, indirectDescriptors: false);
        for (int i = 0; i < _eventFds.Length; i++)
        {
            _eventFds[i] = Interop.Sys.EventFd(0, Interop.Sys.EfdCloexec | Interop.Sys.EfdNonBlock);
            if (_eventFds[i] < 0)
            {
                throw new IOException("eventfd failed.");
            }
        }

        StartQueue(0, Rx.Layout, RxKick, RxCall, protocol != 0 || (offered & FeatureProtocolFeatures) != 0);
        StartQueue(1, Tx.Layout, TxKick, TxCall, protocol != 0 || (offered & FeatureProtocolFeatures) != 0);
    }

    private void StartQueue(uint index, QueueLayout layout, int kick, int call, bool enable)
    {
        _frontend.SetState(VhostRequest.SetVringNum, index, layout.Size);
        _frontend.SetState(VhostRequest.SetVringBase, index, 0);
        Span<byte> address = stackalloc byte[40];
        address.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(address, index);
        BinaryPrimitives.WriteUInt64LittleEndian(address[8..], GuestLayout.UserAddressBase + layout.DescriptorTable.Value);
        BinaryPrimitives.WriteUInt64LittleEndian(address[16..], GuestLayout.UserAddressBase + layout.UsedRing.Value);
        BinaryPrimitives.WriteUInt64LittleEndian(address[24..], GuestLayout.UserAddressBase + layout.AvailRing.Value);
        _frontend.Set(VhostRequest.SetVringAddr, address);
        _frontend.SetU64(VhostRequest.SetVringCall, index, call);
        _frontend.SetU64(VhostRequest.SetVringKick, index, kick);
        if (enable)
        {
            _frontend.SetState(VhostRequest.SetVringEnable, index, 1);
        }
    }
}
