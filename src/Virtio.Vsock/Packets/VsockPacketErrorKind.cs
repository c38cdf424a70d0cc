namespace Virtio.Vsock;

/// <summary>What went wrong while building or using a <see cref="VsockPacket"/>.</summary>
/// <remarks>
/// The first eight kinds mirror rust-vmm's <c>virtio_vsock::packet::Error</c> (the crate's
/// <c>FragmentedMemory</c> has no equivalent: a buffer that crosses guest memory regions is valid here).
/// </remarks>
public enum VsockPacketErrorKind
{
    /// <summary>No error.</summary>
    None = 0,

    /// <summary>The chain ended before a buffer the packet needs (no header descriptor, no data descriptor).</summary>
    DescriptorChainTooShort,

    /// <summary>The chain's buffers are shorter than the header, or than the payload <c>len</c> announces.</summary>
    DescriptorLengthTooSmall,

    /// <summary>An RX data buffer is larger than the maximum payload size.</summary>
    DescriptorLengthTooLong,

    /// <summary>A raw header input was not exactly 44 bytes; <see cref="VsockPacketError.Value"/> is its size.</summary>
    InvalidHeaderInputSize,

    /// <summary>The header's <c>len</c> exceeds the maximum payload size; <see cref="VsockPacketError.Value"/> is the <c>len</c>.</summary>
    InvalidHeaderLen,

    /// <summary>A buffer lies (partly) outside guest memory; <see cref="VsockPacketError.Value"/> is the buffer's guest address.</summary>
    InvalidMemoryAccess,

    /// <summary>A device-readable descriptor where the device must write (RX).</summary>
    UnexpectedReadOnlyDescriptor,

    /// <summary>A device-writable descriptor where the device must read (TX).</summary>
    UnexpectedWriteOnlyDescriptor,

    /// <summary>The descriptor chain itself is malformed (loop, bad index, bad indirect table...);
    /// <see cref="VsockPacketError.QueueError"/> says how.</summary>
    InvalidChain,

    /// <summary>A data copy asked for more bytes than the packet's data buffer holds.</summary>
    DataOutOfRange,
}
