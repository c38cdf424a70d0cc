using System.Net.Sockets;

namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// The result of a guest-initiated connect to a host Unix socket: a status, the connected socket on
/// success, the errno otherwise. Owns the socket until the caller takes it; a failed result must
/// never carry a socket.
/// </summary>
internal readonly struct UnixConnectResult
{
    /// <summary>Creates a result. Normally only <see cref="UnixPortConnector"/> makes these.</summary>
    /// <param name="status">The outcome.</param>
    /// <param name="socket">The connected socket (only with <see cref="UnixConnectStatus.Connected"/>).</param>
    /// <param name="errno">The Linux errno behind a failure, 0 otherwise.</param>
    public UnixConnectResult(UnixConnectStatus status, Socket? socket, int errno)
    {
        Status = status;
        Socket = status == UnixConnectStatus.Connected ? socket : null;
        Errno = errno;
    }

    /// <summary>The outcome.</summary>
    public UnixConnectStatus Status { get; }

    /// <summary>The connected, non-blocking socket when <see cref="Status"/> is connected; null otherwise. The caller owns it.</summary>
    public Socket? Socket { get; }

    /// <summary>The Linux errno behind a failure; 0 on success, timeout and cancellation.</summary>
    public int Errno { get; }

    /// <summary>True when connected.</summary>
    public bool IsConnected => Status == UnixConnectStatus.Connected;

    /// <inheritdoc/>
    public override string ToString() => Errno == 0 ? Status.ToString() : $"{Status} (errno {Errno})";
}
