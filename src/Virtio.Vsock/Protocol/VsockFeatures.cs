namespace Virtio.Vsock;

/// <summary>Feature bits of the virtio socket device, as masks of the 64-bit feature word.</summary>
public static class VsockFeatures
{
    /// <summary>VIRTIO_VSOCK_F_STREAM (bit 0): stream sockets. With no type bit negotiated, stream is implied.</summary>
    public const ulong Stream = 1UL << 0;

    /// <summary>VIRTIO_VSOCK_F_SEQPACKET (bit 1): seqpacket sockets.</summary>
    public const ulong SeqPacket = 1UL << 1;

    /// <summary>VIRTIO_VSOCK_F_NO_IMPLIED_STREAM (bit 2): stream only if <see cref="Stream"/> is negotiated.</summary>
    public const ulong NoImpliedStream = 1UL << 2;

    /// <summary>VIRTIO_F_INDIRECT_DESC (bit 28).</summary>
    public const ulong IndirectDescriptors = 1UL << 28;

    /// <summary>VIRTIO_F_EVENT_IDX (bit 29).</summary>
    public const ulong EventIndex = 1UL << 29;

    /// <summary>VIRTIO_F_VERSION_1 (bit 32): a modern (non-legacy) device.</summary>
    public const ulong Version1 = 1UL << 32;

    /// <summary>Whether stream sockets are usable under the negotiated <paramref name="features"/>.</summary>
    /// <param name="features">The negotiated feature word.</param>
    /// <returns><see langword="true"/> when STREAM is negotiated, or NO_IMPLIED_STREAM is not.</returns>
    /// <remarks>
    /// Stream is implied unless the driver negotiates NO_IMPLIED_STREAM (virtio 1.3, 5.10.3.1: with
    /// SEQPACKET but not NO_IMPLIED_STREAM the device may act as if STREAM were negotiated). Linux guests
    /// rely on this: their driver knows only SEQPACKET, so they negotiate SEQPACKET alone and use stream.
    /// </remarks>
    public static bool StreamEnabled(ulong features) =>
        (features & Stream) != 0 || (features & NoImpliedStream) == 0;

    /// <summary>Whether seqpacket sockets are usable under the negotiated <paramref name="features"/>.</summary>
    /// <param name="features">The negotiated feature word.</param>
    /// <returns><see langword="true"/> when SEQPACKET is negotiated.</returns>
    public static bool SeqPacketEnabled(ulong features) => (features & SeqPacket) != 0;
}
