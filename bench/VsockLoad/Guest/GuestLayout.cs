using Virtio.Memory;

namespace VsockLoad.Guest;

/// <summary>
/// Where everything lives in the load generator's guest memory (one memfd region at guest address 0):
/// the two 256-entry split rings, 256 RX buffers of one 44+4096-byte descriptor, 256 TX header slots
/// and 256 TX payload slots of 64 KiB. Constants only.
/// </summary>
internal static class GuestLayout
{
    /// <summary>Entries per queue.</summary>
    public const ushort QueueSize = 256;

    /// <summary>The guest memory size (sparse memfd).</summary>
    public const ulong MemorySize = 32UL << 20;

    /// <summary>The frontend "virtual address" of guest address 0 (what user_addr and ring addresses carry).</summary>
    public const ulong UserAddressBase = 0x7f00_0000_0000;

    /// <summary>The RX queue's rings.</summary>
    public static readonly GuestAddress RxQueue = new(0x0);

    /// <summary>The TX queue's rings.</summary>
    public static readonly GuestAddress TxQueue = new(0x4000);

    /// <summary>Bytes of one RX buffer: header plus 4096 payload bytes, as Linux >= 6.2 posts.</summary>
    public const uint RxBufferBytes = 44 + 4096;

    /// <summary>Distance between RX buffers.</summary>
    public const ulong RxStride = 4160;

    /// <summary>First RX buffer.</summary>
    public const ulong RxBase = 0x10000;

    /// <summary>Distance between TX header slots.</summary>
    public const ulong TxHeaderStride = 64;

    /// <summary>First TX header slot.</summary>
    public const ulong TxHeaderBase = 0x200000;

    /// <summary>The largest payload of one packet (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE).</summary>
    public const int MaxPacketPayload = 64 * 1024;

    /// <summary>First TX payload slot (64 KiB each).</summary>
    public const ulong TxPayloadBase = 0x400000;

    /// <summary>The address of RX buffer <paramref name="index"/>.</summary>
    /// <param name="index">The buffer index.</param>
    /// <returns>The guest address.</returns>
    public static GuestAddress RxBuffer(int index) => new(RxBase + ((ulong)index * RxStride));

    /// <summary>The header address of TX slot <paramref name="slot"/>.</summary>
    /// <param name="slot">The slot.</param>
    /// <returns>The guest address.</returns>
    public static GuestAddress TxHeader(int slot) => new(TxHeaderBase + ((ulong)slot * TxHeaderStride));

    /// <summary>The payload address of TX slot <paramref name="slot"/>.</summary>
    /// <param name="slot">The slot.</param>
    /// <returns>The guest address.</returns>
    public static GuestAddress TxPayload(int slot) => new(TxPayloadBase + ((ulong)slot * MaxPacketPayload));
}
