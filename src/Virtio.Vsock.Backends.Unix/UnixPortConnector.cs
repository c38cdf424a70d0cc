using System.Runtime.InteropServices;
using System.Net.Sockets;
using System.Text;
using Virtio.Vsock;

namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// Opens guest-initiated connections to host port P by connecting to the Unix socket
/// <c>&lt;uds_path&gt;_&lt;P&gt;</c> (see <see cref="UnixBackendPaths"/>), SOCK_STREAM or
/// SOCK_SEQPACKET to match the guest's socket type. Owns the path prefix and the timeout; owns no
/// socket once a result is returned. It must never block the caller (every connect is a
/// non-blocking system call; a full listener backlog is retried on timers, not on a waiting thread),
/// never throw for a connect failure (failures are <see cref="UnixConnectResult"/> values, so the
/// engine can RST the guest at once), and never take longer than its timeout.
/// </summary>
/// <remarks>
/// A Unix stream connect completes at once when the listener's backlog has room (before the host
/// application calls accept), fails at once when nobody listens, and reports EAGAIN when the
/// backlog is full. <see cref="ConnectAsync"/> retries EAGAIN with a short backoff (1, 2, 4 ... up
/// to 50 ms) until <see cref="ConnectTimeout"/> (default 1 s, well under the guest's usual 2 s
/// connect timeout), then reports <see cref="UnixConnectStatus.TimedOut"/>. Allocation: one
/// <see cref="Socket"/> per successful connect; nothing on the immediate-failure path.
/// Thread-safe: it holds no mutable state.
/// </remarks>
internal sealed class UnixPortConnector
{
    /// <summary>The default connect timeout (1 s).</summary>
    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(1);

    private const int MaxBackoffMilliseconds = 50;
    private const int AddressBufferLength = 2 + Interop.Sys.SockaddrUn.MaxPathBytes + 1;

    private readonly byte[] _prefix;

    /// <summary>Creates a connector for the backend's <c>uds_path</c>.</summary>
    /// <param name="udsPath">The backend's <c>uds_path</c>; <c>&lt;uds_path&gt;_4294967295</c> must fit in a socket address.</param>
    /// <param name="connectTimeout">How long a full backlog is retried; null for <see cref="DefaultConnectTimeout"/>. Must be positive.</param>
    /// <exception cref="ArgumentException">The path is empty, contains NUL, or is too long.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The timeout is not in (0, 1 day].</exception>
    public UnixPortConnector(string udsPath, TimeSpan? connectTimeout = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(udsPath);
        if (!UnixBackendPaths.FitsSocketAddress(UnixBackendPaths.HostPortPath(udsPath, uint.MaxValue)))
        {
            throw new ArgumentException(
                $"'{udsPath}_<port>' does not fit in a Unix socket address ({UnixBackendPaths.MaxPathBytes} bytes).",
                nameof(udsPath));
        }

        TimeSpan timeout = connectTimeout ?? DefaultConnectTimeout;
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero, nameof(connectTimeout));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(timeout, TimeSpan.FromDays(1), nameof(connectTimeout));
        UdsPath = udsPath;
        ConnectTimeout = timeout;
        _prefix = Encoding.UTF8.GetBytes(udsPath + "_");
    }

    /// <summary>The backend's <c>uds_path</c>.</summary>
    public string UdsPath { get; }

    /// <summary>How long <see cref="ConnectAsync"/> retries a full listener backlog.</summary>
    public TimeSpan ConnectTimeout { get; }

    /// <summary>The socket path for host port <paramref name="port"/>.</summary>
    /// <param name="port">The host port.</param>
    /// <returns><c>&lt;uds_path&gt;_&lt;port&gt;</c>.</returns>
    public string GetPath(uint port) => UnixBackendPaths.HostPortPath(UdsPath, port);

    /// <summary>
    /// One non-blocking connect attempt; returns at once. A full backlog is
    /// <see cref="UnixConnectStatus.Busy"/>.
    /// </summary>
    /// <param name="port">The host port P (the guest's destination port).</param>
    /// <param name="type">The guest's socket type: stream or seqpacket.</param>
    /// <returns>The connected socket (non-blocking) or the failure.</returns>
    public UnixConnectResult TryConnect(uint port, VsockType type)
    {
        if (!TryGetSocketType(type, out int socketType))
        {
            return new UnixConnectResult(UnixConnectStatus.Failed, null, Interop.Errors.EPROTOTYPE);
        }

        Span<byte> address = stackalloc byte[AddressBufferLength];
        int length = BuildAddress(port, address);
        int error = TryConnect(socketType, address[..length], out int fd);
        if (error == Interop.Errors.EAGAIN)
        {
            Interop.Sys.Close(fd);
        }

        return Finish(error, fd);
    }

    /// <summary>
    /// Connects to host port P without blocking the caller: completes synchronously unless the
    /// listener's backlog is full, which is retried until <see cref="ConnectTimeout"/>.
    /// </summary>
    /// <param name="port">The host port P (the guest's destination port).</param>
    /// <param name="type">The guest's socket type: stream or seqpacket.</param>
    /// <param name="cancellationToken">Cancels the retries (the result is then <see cref="UnixConnectStatus.Canceled"/>).</param>
    /// <returns>The connected socket (non-blocking) or the failure; never faults.</returns>
    public ValueTask<UnixConnectResult> ConnectAsync(uint port, VsockType type, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return new ValueTask<UnixConnectResult>(new UnixConnectResult(UnixConnectStatus.Canceled, null, 0));
        }

        if (!TryGetSocketType(type, out int socketType))
        {
            return new ValueTask<UnixConnectResult>(new UnixConnectResult(UnixConnectStatus.Failed, null, Interop.Errors.EPROTOTYPE));
        }

        long start = Environment.TickCount64;
        Span<byte> address = stackalloc byte[AddressBufferLength];
        int length = BuildAddress(port, address);
        int error = TryConnect(socketType, address[..length], out int fd);
        if (error != Interop.Errors.EAGAIN)
        {
            return new ValueTask<UnixConnectResult>(Finish(error, fd));
        }

        return RetryAsync(fd, address[..length].ToArray(), start, cancellationToken);
    }

    private async ValueTask<UnixConnectResult> RetryAsync(int fd, byte[] address, long start, CancellationToken cancellationToken)
    {
        long deadline = start + (long)ConnectTimeout.TotalMilliseconds;
        int backoff = 1;
        try
        {
            while (true)
            {
                long remaining = deadline - Environment.TickCount64;
                if (remaining <= 0)
                {
                    return new UnixConnectResult(UnixConnectStatus.TimedOut, null, 0);
                }

                try
                {
                    await Task.Delay((int)Math.Min(backoff, remaining), cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return new UnixConnectResult(UnixConnectStatus.Canceled, null, 0);
                }

                backoff = Math.Min(backoff * 2, MaxBackoffMilliseconds);
                int error = RetryConnect(fd, address);
                if (error != Interop.Errors.EAGAIN)
                {
                    int owned = fd;
                    fd = -1;
                    if (error != 0)
                    {
                        Interop.Sys.Close(owned);
                    }

                    return Finish(error, owned);
                }
            }
        }
        finally
        {
            if (fd >= 0)
            {
                Interop.Sys.Close(fd);
            }
        }
    }

    private int BuildAddress(uint port, Span<byte> address)
    {
        Span<byte> digits = stackalloc byte[10];
        port.TryFormat(digits, out int written, default, System.Globalization.CultureInfo.InvariantCulture);
        return BuildSockAddr(_prefix, digits[..written], address);
    }

    private static bool TryGetSocketType(VsockType type, out int socketType)
    {
        socketType = type switch
        {
            VsockType.Stream => Interop.Sys.SockStream,
            VsockType.SeqPacket => Interop.Sys.SockSeqPacket,
            _ => 0,
        };
        return socketType != 0 && Interop.IsSupported;
    }

    /// <summary>
    /// Turns a connect outcome into a result. On success the descriptor is wrapped in a
    /// <see cref="Socket"/> (or closed if that fails); on failure it is not touched (already closed).
    /// </summary>
    private static UnixConnectResult Finish(int error, int fd)
    {
        if (error == 0)
        {
            try
            {
                var socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
                socket.Blocking = false;
                return new UnixConnectResult(UnixConnectStatus.Connected, socket, 0);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or ArgumentException)
            {
                Interop.Sys.Close(fd);
                return new UnixConnectResult(UnixConnectStatus.Failed, null, (e as SocketException)?.NativeErrorCode ?? 0);
            }
        }

        UnixConnectStatus status = error switch
        {
            Interop.Errors.ENOENT => UnixConnectStatus.NotFound,
            Interop.Errors.ECONNREFUSED => UnixConnectStatus.Refused,
            Interop.Errors.EPROTOTYPE => UnixConnectStatus.WrongType,
            Interop.Errors.EAGAIN => UnixConnectStatus.Busy,
            Interop.Errors.EACCES => UnixConnectStatus.AccessDenied,
            _ => UnixConnectStatus.Failed,
        };
        return new UnixConnectResult(status, null, error);
    }

    /// <summary>Writes <c>struct sockaddr_un</c> for <paramref name="utf8Path"/> + <paramref name="suffix"/> into <paramref name="destination"/>.</summary>
    /// <returns>The address length, or 0 when the path is empty or does not fit.</returns>
    private static int BuildSockAddr(ReadOnlySpan<byte> utf8Path, ReadOnlySpan<byte> suffix, Span<byte> destination)
    {
        int pathLength = utf8Path.Length + suffix.Length;
        if (pathLength == 0 || pathLength > Interop.Sys.SockaddrUn.MaxPathBytes || destination.Length < AddressBufferLength)
        {
            return 0;
        }

        destination[0] = Interop.Sys.AfUnix;
        destination[1] = 0;
        utf8Path.CopyTo(destination[2..]);
        suffix.CopyTo(destination[(2 + utf8Path.Length)..]);
        destination[2 + pathLength] = 0;
        return 2 + pathLength + 1;
    }

    /// <summary>A non-blocking socket of <paramref name="socketType"/> connecting to <paramref name="address"/>.</summary>
    /// <returns>0 (connected) or EAGAIN (backlog full: <paramref name="fd"/> is open, retry), or the errno (nothing open).</returns>
    private static int TryConnect(int socketType, ReadOnlySpan<byte> address, out int fd)
    {
        fd = Interop.Sys.Socket(Interop.Sys.AfUnix, socketType | Interop.Sys.SockNonBlock | Interop.Sys.SockCloexec, 0);
        if (fd < 0)
        {
            return Marshal.GetLastPInvokeError();
        }

        int error = RetryConnect(fd, address);
        if (error != 0 && error != Interop.Errors.EAGAIN)
        {
            Interop.Sys.Close(fd);
            fd = -1;
        }

        return error;
    }

    /// <summary><c>connect</c>, repeated on EINTR.</summary>
    /// <returns>0, or the errno.</returns>
    private static unsafe int RetryConnect(int fd, ReadOnlySpan<byte> address)
    {
        fixed (byte* p = address)
        {
            while (true)
            {
                if (Interop.Sys.Connect(fd, (Interop.Sys.SockaddrUn*)p, (uint)address.Length) == 0)
                {
                    return 0;
                }

                int error = Marshal.GetLastPInvokeError();
                if (error != Interop.Errors.EINTR)
                {
                    return error;
                }
            }
        }
    }
}
