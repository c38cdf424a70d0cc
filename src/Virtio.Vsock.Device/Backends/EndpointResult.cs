namespace Virtio.Vsock.Device;

/// <summary>The outcome of an endpoint read or write: a status, the bytes moved and, for SEQPACKET reads, the message flags.</summary>
/// <param name="Status">What happened.</param>
/// <param name="Bytes">The bytes moved.</param>
/// <param name="Flags">For a SEQPACKET read: EOM (and EOR) when the bytes end a message.</param>
public readonly record struct EndpointResult(EndpointStatus Status, int Bytes, SeqPacketFlags Flags = SeqPacketFlags.None)
{
    /// <summary>Nothing can move now.</summary>
    public static EndpointResult WouldBlock => new(EndpointStatus.WouldBlock, 0);

    /// <summary>Read: end of stream.</summary>
    public static EndpointResult EndOfStream => new(EndpointStatus.EndOfStream, 0);

    /// <summary>The peer closed entirely.</summary>
    public static EndpointResult Closed => new(EndpointStatus.Closed, 0);

    /// <summary>The host side failed.</summary>
    public static EndpointResult Error => new(EndpointStatus.Error, 0);

    /// <summary>Bytes moved.</summary>
    /// <param name="bytes">The count.</param>
    /// <param name="flags">Message flags for SEQPACKET reads.</param>
    /// <returns>The result.</returns>
    public static EndpointResult Ok(int bytes, SeqPacketFlags flags = SeqPacketFlags.None) => new(EndpointStatus.Ok, bytes, flags);
}
