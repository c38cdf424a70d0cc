namespace Virtio.Vsock.Device.Siblings;

/// <summary>
/// One packet queued on a <see cref="SiblingRoute"/>: the header exactly as the sending guest wrote it, a copy
/// of its payload, and the epochs of both devices when it was queued.
/// </summary>
/// <remarks>
/// <b>Owns:</b> its payload array, rented from <see cref="System.Buffers.ArrayPool{T}.Shared"/> by the producer and
/// returned by whoever removes the packet from the route. <b>Must never:</b> be read before the producer
/// published it or after the consumer released it.
/// </remarks>
internal struct SiblingPacket
{
    /// <summary>The header, unchanged (<c>len</c> is the payload length).</summary>
    public VsockHeader Header;

    /// <summary>The payload (at least <c>Header.Len</c> bytes), or <see langword="null"/> when empty.</summary>
    public byte[]? Payload;

    /// <summary>The sending device's epoch when the packet was queued.</summary>
    public long SourceEpoch;

    /// <summary>The receiving device's epoch when the packet was queued.</summary>
    public long DestinationEpoch;
}
