namespace Virtio.Vsock.Device;

/// <summary>
/// The host side of one connection, driven by the device loop. Every method is called on the loop thread
/// and must not block: I/O that cannot proceed returns <see cref="EndpointStatus.WouldBlock"/>, and after
/// <see cref="RequestReadable"/> / <see cref="RequestWritable"/> the endpoint calls the matching
/// <see cref="IVsockEndpointEvents"/> method once (from any thread) when it may proceed.
/// </summary>
public interface IVsockEndpoint
{
    /// <summary>The connection is established; from now on the endpoint may signal <paramref name="events"/>.</summary>
    /// <param name="events">Readiness callbacks.</param>
    void Start(IVsockEndpointEvents events);

    /// <summary>Guest-to-host data straight from a TX packet's payload, from <paramref name="offset"/> to its end.</summary>
    /// <param name="packet">A parsed TX packet.</param>
    /// <param name="offset">The first payload byte to write.</param>
    /// <param name="boundary">For SEQPACKET: the flags of the message end that follows the last byte, if all are taken.</param>
    /// <returns>The bytes taken (possibly fewer), or why none.</returns>
    EndpointResult Write(VsockPacket packet, int offset, SeqPacketFlags boundary);

    /// <summary>
    /// Guest-to-host stream data from several TX packets' whole payloads, in order, so a backend can write a run of
    /// packets with one system call. Only called for <see cref="VsockType.Stream"/>
    /// connections, and only when <see cref="WritesFromManyPackets"/>. Default: the first packet only.
    /// </summary>
    /// <param name="packets">Parsed TX packets.</param>
    /// <returns>The bytes taken from the packets in order (possibly fewer than all), or why none.</returns>
    EndpointResult Write(ReadOnlySpan<VsockPacket> packets) =>
        Write(packets[0], 0, SeqPacketFlags.None);

    /// <summary>
    /// Whether <see cref="Write(ReadOnlySpan{VsockPacket})"/> writes more than the first packet (one system call
    /// for several TX packets). Only then does the device hold a connection's data packets back within a TX batch to
    /// write them together. Default: no.
    /// </summary>
    bool WritesFromManyPackets => false;

    /// <summary>Guest-to-host data buffered earlier by the connection.</summary>
    /// <param name="data">The bytes.</param>
    /// <param name="boundary">For SEQPACKET: the flags of the message end that follows the last byte, if all are taken.</param>
    /// <returns>The bytes taken (possibly fewer), or why none.</returns>
    EndpointResult Write(ReadOnlySpan<byte> data, SeqPacketFlags boundary);

    /// <summary>Host-to-guest data straight into an RX packet's data buffer (at its start).</summary>
    /// <param name="packet">A parsed RX packet.</param>
    /// <param name="maxBytes">The most bytes to read (within the packet's capacity and the guest's credit).</param>
    /// <returns>The bytes read and, for SEQPACKET, <see cref="SeqPacketFlags"/> when they end a message;
    /// <see cref="EndpointStatus.EndOfStream"/> when the host shut down sending; <see cref="EndpointStatus.Closed"/>
    /// when the host closed entirely.</returns>
    EndpointResult Read(VsockPacket packet, int maxBytes);

    /// <summary>
    /// Host-to-guest stream data into several RX packets' data buffers at once, in order (each filled before the
    /// next), so a backend can take a burst with one system call. Only called for <see cref="VsockType.Stream"/>
    /// connections. Default: <see cref="Read(VsockPacket, int)"/> into the first packet only.
    /// </summary>
    /// <param name="packets">Parsed RX packets; the device writes their headers afterwards.</param>
    /// <param name="maxBytes">The most bytes to read in all (within the packets' capacities and the guest's credit).</param>
    /// <returns>As <see cref="Read(VsockPacket, int)"/>; the bytes fill the packets in order.</returns>
    EndpointResult Read(ReadOnlySpan<VsockPacket> packets, int maxBytes) =>
        Read(packets[0], Math.Min(maxBytes, packets[0].DataCapacity));

    /// <summary>
    /// Whether <see cref="Read(ReadOnlySpan{VsockPacket}, int)"/> fills more than the first packet (one system call
    /// for several RX buffers). Only then does the device take extra RX buffers for a burst. Default: no.
    /// </summary>
    bool ReadsIntoManyPackets => false;

    /// <summary>Asks for one <see cref="IVsockEndpointEvents.Readable"/> when data, EOF or an error is there (immediately if already so).</summary>
    void RequestReadable();

    /// <summary>Asks for one <see cref="IVsockEndpointEvents.Writable"/> when a write may take bytes (immediately if already so).</summary>
    void RequestWritable();

    /// <summary>The guest will send no more: the host peer sees end of stream after the data already written.</summary>
    void ShutdownSend();

    /// <summary>
    /// The guest will receive no more (it called <c>shutdown(SHUT_RD)</c>): the host peer's further sends
    /// should fail (EPIPE for a Unix socket), also when the peer had filled its buffer and waits for room, so
    /// what the peer queued and the guest will never read should be dropped. Default: nothing (the connection
    /// just stops reading).
    /// </summary>
    void ShutdownReceive()
    {
    }

    /// <summary>The connection is over; release everything. Idempotent.</summary>
    /// <param name="abort"><see langword="true"/> for a reset (the host peer sees an error), <see langword="false"/> for an orderly close.</param>
    void Close(bool abort);
}
