using System.Runtime.InteropServices;

namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// The result of one non-blocking operation on a host Unix socket: status, bytes moved, and for
/// SOCK_SEQPACKET receives the full message length and whether it was truncated. Owns no memory and
/// no socket; must never be created by throwing and catching.
/// </summary>
internal readonly struct UnixIoResult : IEquatable<UnixIoResult>
{
    /// <summary>Creates a result. Normally only this backend makes these.</summary>
    /// <param name="status">The outcome class.</param>
    /// <param name="bytes">Bytes received or sent.</param>
    /// <param name="messageLength">The length of the whole SOCK_SEQPACKET message (receives), else <paramref name="bytes"/>.</param>
    /// <param name="truncated">True if a SOCK_SEQPACKET message was longer than the buffers.</param>
    /// <param name="errno">The Linux errno behind a failure, 0 otherwise.</param>
    public UnixIoResult(UnixIoStatus status, int bytes, int messageLength, bool truncated, int errno)
    {
        Status = status;
        Bytes = bytes;
        MessageLength = messageLength;
        Truncated = truncated;
        Errno = errno;
    }

    /// <summary>The outcome class.</summary>
    public UnixIoStatus Status { get; }

    /// <summary>Bytes received into the caller's buffers, or sent from them.</summary>
    public int Bytes { get; }

    /// <summary>
    /// For SOCK_SEQPACKET receives and peeks: the length of the whole message, even when it was larger
    /// than the buffers (then <see cref="Truncated"/> is true and the rest of the message is lost,
    /// unless it was a peek). Equal to <see cref="Bytes"/> otherwise.
    /// </summary>
    public int MessageLength { get; }

    /// <summary>True when a received SOCK_SEQPACKET message did not fit the buffers (MSG_TRUNC).</summary>
    public bool Truncated { get; }

    /// <summary>The Linux errno behind <see cref="UnixIoStatus.Error"/> and the other failures; 0 on success.</summary>
    public int Errno { get; }

    /// <summary>True when <see cref="Status"/> is <see cref="UnixIoStatus.Ok"/>.</summary>
    public bool IsOk => Status == UnixIoStatus.Ok;

    /// <summary>
    /// True when the status means this direction of the socket is finished for good (anything but
    /// <see cref="UnixIoStatus.Ok"/>, <see cref="UnixIoStatus.WouldBlock"/> and
    /// <see cref="UnixIoStatus.Canceled"/>).
    /// </summary>
    public bool IsFinal => Status is not (UnixIoStatus.Ok or UnixIoStatus.WouldBlock or UnixIoStatus.Canceled);

    /// <summary>Compares two results field by field.</summary>
    /// <param name="left">The first result.</param>
    /// <param name="right">The second result.</param>
    /// <returns>True if all fields are equal.</returns>
    public static bool operator ==(UnixIoResult left, UnixIoResult right) => left.Equals(right);

    /// <summary>Compares two results field by field.</summary>
    /// <param name="left">The first result.</param>
    /// <param name="right">The second result.</param>
    /// <returns>True if any field differs.</returns>
    public static bool operator !=(UnixIoResult left, UnixIoResult right) => !left.Equals(right);

    /// <summary>A success that moved <paramref name="bytes"/> bytes.</summary>
    /// <param name="bytes">Bytes moved.</param>
    /// <returns>The result.</returns>
    public static UnixIoResult Success(int bytes) => new(UnixIoStatus.Ok, bytes, bytes, false, 0);

    /// <summary>A failure with the given status and errno.</summary>
    /// <param name="status">The outcome class.</param>
    /// <param name="errno">The errno, or 0.</param>
    /// <returns>The result.</returns>
    public static UnixIoResult Failure(UnixIoStatus status, int errno) => new(status, 0, 0, false, errno);

    /// <summary>Classifies a Linux errno from a receive, send or shutdown.</summary>
    /// <param name="errno">The errno.</param>
    /// <returns>The failure result.</returns>
    public static UnixIoResult FromErrno(int errno) => Failure(
        errno switch
        {
            Interop.Errors.EAGAIN => UnixIoStatus.WouldBlock,
            Interop.Errors.ECONNRESET => UnixIoStatus.Reset,
            Interop.Errors.EPIPE => UnixIoStatus.PeerClosed,
            Interop.Errors.EMSGSIZE => UnixIoStatus.MessageTooLarge,
            Interop.Errors.EBADF => UnixIoStatus.SocketClosed,
            _ => UnixIoStatus.Error,
        },
        errno);

    /// <inheritdoc/>
    public bool Equals(UnixIoResult other) =>
        Status == other.Status && Bytes == other.Bytes && MessageLength == other.MessageLength &&
        Truncated == other.Truncated && Errno == other.Errno;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is UnixIoResult other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Status, Bytes, MessageLength, Truncated, Errno);

    /// <inheritdoc/>
    public override string ToString() => Status switch
    {
        UnixIoStatus.Ok when Truncated => $"Ok({Bytes} of a {MessageLength}-byte message, truncated)",
        UnixIoStatus.Ok => $"Ok({Bytes})",
        _ when Errno != 0 => $"{Status} (errno {Errno}: {Marshal.GetPInvokeErrorMessage(Errno)})",
        _ => Status.ToString(),
    };
}
