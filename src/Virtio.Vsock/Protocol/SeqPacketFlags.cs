namespace Virtio.Vsock;

/// <summary>The flags of a <see cref="VsockOp.Rw"/> packet on a <see cref="VsockType.SeqPacket"/> connection.</summary>
[Flags]
public enum SeqPacketFlags : uint
{
    /// <summary>More packets of the same message follow.</summary>
    None = 0,

    /// <summary>This packet ends a message (VIRTIO_VSOCK_SEQ_EOM).</summary>
    EndOfMessage = 1,

    /// <summary>This packet ends a record, MSG_EOR (VIRTIO_VSOCK_SEQ_EOR).</summary>
    EndOfRecord = 2,
}
