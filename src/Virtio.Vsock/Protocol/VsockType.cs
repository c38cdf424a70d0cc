namespace Virtio.Vsock;

/// <summary>The socket type of a vsock packet (header field <c>type</c>, le16 at offset 28).</summary>
public enum VsockType : ushort
{
    /// <summary>A byte stream (SOCK_STREAM). Needs VIRTIO_VSOCK_F_STREAM, or no type feature at all.</summary>
    Stream = 1,

    /// <summary>Reliable messages with boundaries (SOCK_SEQPACKET). Needs VIRTIO_VSOCK_F_SEQPACKET.</summary>
    SeqPacket = 2,
}
