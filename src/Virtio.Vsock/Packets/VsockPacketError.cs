using System.Globalization;
using Virtio.Queue;

namespace Virtio.Vsock;

/// <summary>
/// The outcome of a <see cref="VsockPacket"/> operation: <see cref="None"/>, or a
/// <see cref="VsockPacketErrorKind"/> with the value it is about (a size, a <c>len</c>, an address) and,
/// for <see cref="VsockPacketErrorKind.InvalidChain"/>, the queue's own error. A small value type:
/// returning it allocates nothing.
/// </summary>
public readonly record struct VsockPacketError
{
    private VsockPacketError(VsockPacketErrorKind kind, ulong value, QueueError queueError)
    {
        Kind = kind;
        Value = value;
        QueueError = queueError;
    }

    /// <summary>Success.</summary>
    public static VsockPacketError None => default;

    /// <summary>The kind of error, or <see cref="VsockPacketErrorKind.None"/>.</summary>
    public VsockPacketErrorKind Kind { get; }

    /// <summary>The size, <c>len</c> or guest address the error is about (see each kind), else 0.</summary>
    public ulong Value { get; }

    /// <summary>For <see cref="VsockPacketErrorKind.InvalidChain"/>, the queue's error.</summary>
    public QueueError QueueError { get; }

    /// <summary>Whether this is an error.</summary>
    public bool IsError => Kind != VsockPacketErrorKind.None;

    /// <summary>An error of <paramref name="kind"/> with no value.</summary>
    /// <param name="kind">The kind.</param>
    /// <returns>The error.</returns>
    public static VsockPacketError Of(VsockPacketErrorKind kind) => new(kind, 0, QueueError.None);

    /// <summary>The header input had <paramref name="size"/> bytes instead of 44.</summary>
    /// <param name="size">The size given.</param>
    /// <returns>The error.</returns>
    public static VsockPacketError InvalidHeaderInputSize(int size) => new(VsockPacketErrorKind.InvalidHeaderInputSize, (ulong)size, QueueError.None);

    /// <summary>The header announced <paramref name="len"/> payload bytes, above the limit.</summary>
    /// <param name="len">The header's len.</param>
    /// <returns>The error.</returns>
    public static VsockPacketError InvalidHeaderLen(uint len) => new(VsockPacketErrorKind.InvalidHeaderLen, len, QueueError.None);

    /// <summary>The buffer at <paramref name="address"/> is not inside guest memory.</summary>
    /// <param name="address">The guest address of the buffer.</param>
    /// <returns>The error.</returns>
    public static VsockPacketError InvalidMemoryAccess(ulong address) => new(VsockPacketErrorKind.InvalidMemoryAccess, address, QueueError.None);

    /// <summary>The chain is malformed.</summary>
    /// <param name="error">The queue's error.</param>
    /// <returns>The error.</returns>
    public static VsockPacketError InvalidChain(QueueError error) => new(VsockPacketErrorKind.InvalidChain, 0, error);

    /// <summary>A one-line English description.</summary>
    /// <returns>The description.</returns>
    public string Describe() => Kind switch
    {
        VsockPacketErrorKind.None => "no error",
        VsockPacketErrorKind.DescriptorChainTooShort => "the descriptor chain is too short for a vsock packet",
        VsockPacketErrorKind.DescriptorLengthTooSmall => "a descriptor's buffer is smaller than the packet needs",
        VsockPacketErrorKind.DescriptorLengthTooLong => "the RX data buffer is larger than the maximum payload size",
        VsockPacketErrorKind.InvalidHeaderInputSize => string.Create(CultureInfo.InvariantCulture, $"a vsock header must be 44 bytes, got {Value}"),
        VsockPacketErrorKind.InvalidHeaderLen => string.Create(CultureInfo.InvariantCulture, $"the header's len {Value} exceeds the maximum payload size"),
        VsockPacketErrorKind.InvalidMemoryAccess => string.Create(CultureInfo.InvariantCulture, $"the buffer at guest address 0x{Value:x} is not inside guest memory"),
        VsockPacketErrorKind.UnexpectedReadOnlyDescriptor => "a device-readable descriptor was found where the device must write",
        VsockPacketErrorKind.UnexpectedWriteOnlyDescriptor => "a device-writable descriptor was found where the device must read",
        VsockPacketErrorKind.InvalidChain => "the descriptor chain is malformed: " + QueueError.Describe(),
        VsockPacketErrorKind.DataOutOfRange => "the copy runs past the end of the packet's data buffer",
        _ => "unknown vsock packet error",
    };

    /// <inheritdoc/>
    public override string ToString() => Describe();
}
