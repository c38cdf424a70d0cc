using System.Diagnostics;
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
/// non-blocking system call; a full listener backlog is retried on the device loop's timers, not on a waiting
/// thread or the thread pool),
/// never throw for a connect failure (failures are <see cref="UnixConnectResult"/> values, so the
/// engine can RST the guest at once), and never take longer than its timeout.
/// </summary>
/// <remarks>
/// A Unix stream connect completes at once when the listener's backlog has room (before the host
/// application calls accept), fails at once when nobody listens, and reports EAGAIN when the
/// backlog is full. <see cref="Connect"/> retries EAGAIN on device-loop timers with a short backoff (1, 2, 4 ... up
/// to 50 ms) until <see cref="ConnectTimeout"/> (default 1 s, well under the guest's usual 2 s
/// connect timeout), then reports <see cref="UnixConnectStatus.TimedOut"/>. Allocation: one
/// <see cref="Socket"/> per successful connect; nothing on the immediate-failure path; one retry record and
/// one timer per connect that met a full backlog. Thread-safe: it holds no mutable state.
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
    /// Connects to host port P without blocking the caller: done at once unless the listener's backlog is full,
    /// which is retried on <paramref name="loop"/>'s timers (1, 2, 4 ... up to 50 ms apart) until
    /// <see cref="ConnectTimeout"/>.
    /// </summary>
    /// <param name="port">The host port P (the guest's destination port).</param>
    /// <param name="type">The guest's socket type: stream or seqpacket.</param>
    /// <param name="loop">The device loop whose timers drive the retries (each retry is one non-blocking <c>connect</c> on it).</param>
    /// <param name="retried">Called exactly once with <paramref name="state"/> and the outcome when this returns
    /// <see langword="false"/>: on the loop, or on the thread that cancels <paramref name="cancellationToken"/>. Must not
    /// block. (A cached delegate plus a state keeps the common, immediate path free of allocations.)</param>
    /// <param name="state">Passed to <paramref name="retried"/>.</param>
    /// <param name="cancellationToken">Cancels the retries (the outcome is then <see cref="UnixConnectStatus.Canceled"/>).</param>
    /// <param name="result">The outcome when this returns <see langword="true"/>.</param>
    /// <returns><see langword="true"/> when done now (<paramref name="result"/>); <see langword="false"/> when retrying.</returns>
    public bool Connect(
        uint port,
        VsockType type,
        IVsockFdPoller loop,
        Action<object?, UnixConnectResult> retried,
        object? state,
        CancellationToken cancellationToken,
        out UnixConnectResult result)
    {
        ArgumentNullException.ThrowIfNull(loop);
        ArgumentNullException.ThrowIfNull(retried);
        if (cancellationToken.IsCancellationRequested)
        {
            result = new UnixConnectResult(UnixConnectStatus.Canceled, null, 0);
            return true;
        }

        if (!TryGetSocketType(type, out int socketType))
        {
            result = new UnixConnectResult(UnixConnectStatus.Failed, null, Interop.Errors.EPROTOTYPE);
            return true;
        }

        long start = Stopwatch.GetTimestamp();
        Span<byte> address = stackalloc byte[AddressBufferLength];
        int length = BuildAddress(port, address);
        int error = TryConnect(socketType, address[..length], out int fd);
        if (error != Interop.Errors.EAGAIN)
        {
            result = Finish(error, fd);
            return true;
        }

        long deadline = start + (long)(ConnectTimeout.TotalSeconds * Stopwatch.Frequency);
        new RetryingConnect(fd, address[..length].ToArray(), deadline, retried, state).Start(loop, cancellationToken);
        result = default;
        return false;
    }

    /// <summary>
    /// <see cref="Connect"/> as a task (for callers that await; the backend uses <see cref="Connect"/> so the outcome
    /// of a retried connect is handled on the loop).
    /// </summary>
    /// <param name="port">The host port P.</param>
    /// <param name="type">Stream or seqpacket.</param>
    /// <param name="loop">The device loop whose timers drive the retries.</param>
    /// <param name="cancellationToken">Cancels the retries.</param>
    /// <returns>The connected socket (non-blocking) or the failure; never faults. Completed at once unless the backlog is full.</returns>
    public ValueTask<UnixConnectResult> ConnectAsync(uint port, VsockType type, IVsockFdPoller loop, CancellationToken cancellationToken = default)
    {
        var later = new TaskCompletionSource<UnixConnectResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        return Connect(port, type, loop, static (tcs, outcome) => ((TaskCompletionSource<UnixConnectResult>)tcs!).TrySetResult(outcome), later, cancellationToken, out UnixConnectResult now)
            ? new ValueTask<UnixConnectResult>(now)
            : new ValueTask<UnixConnectResult>(later.Task);
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

    /// <summary>
    /// One connect whose listener's backlog was full: retried by a loop timer, finished exactly once (by the timer on
    /// the loop, or by cancellation on the cancelling thread; the descriptor is used and closed under one lock).
    /// </summary>
    private sealed class RetryingConnect(int fd, byte[] address, long deadline, Action<object?, UnixConnectResult> done, object? state) : IVsockTimerHandler
    {
        private readonly object _gate = new();
        private int _fd = fd;
        private int _backoff = 1;
        private IVsockTimer? _timer;
        private CancellationTokenRegistration _cancel;
        private bool _finished;

        public void Start(IVsockFdPoller loop, CancellationToken cancellationToken)
        {
            UnixConnectResult stopped = default;
            bool armed;
            lock (_gate)
            {
                _timer = loop.CreateTimer(this);
                armed = Arm();
                if (!armed)
                {
                    // The loop stopped: nothing would retry.
                    Complete(new UnixConnectResult(UnixConnectStatus.Canceled, null, 0), out stopped);
                }
            }

            if (!armed)
            {
                done(state, stopped);
                return;
            }

            _cancel = cancellationToken.UnsafeRegister(static state => ((RetryingConnect)state!).Cancel(), this);
        }

        public void OnTimer()
        {
            UnixConnectResult outcome;
            lock (_gate)
            {
                if (_finished)
                {
                    return;
                }

                int error = RetryConnect(_fd, address);
                if (error == Interop.Errors.EAGAIN)
                {
                    _backoff = Math.Min(_backoff * 2, MaxBackoffMilliseconds);
                    if (Stopwatch.GetTimestamp() < deadline && Arm())
                    {
                        return;
                    }

                    Complete(new UnixConnectResult(UnixConnectStatus.TimedOut, null, 0), out outcome);
                }
                else
                {
                    int owned = _fd;
                    _fd = -1;
                    if (error != 0)
                    {
                        Interop.Sys.Close(owned);
                    }

                    Complete(UnixPortConnector.Finish(error, owned), out outcome);
                }
            }

            done(state, outcome);
        }

        public void OnTimerFault(Exception exception) => Abandon(new UnixConnectResult(UnixConnectStatus.Failed, null, 0));

        private void Cancel() => Abandon(new UnixConnectResult(UnixConnectStatus.Canceled, null, 0));

        private void Abandon(UnixConnectResult result)
        {
            UnixConnectResult outcome;
            lock (_gate)
            {
                if (_finished)
                {
                    return;
                }

                Complete(result, out outcome);
            }

            done(state, outcome);
        }

        /// <summary>Arms the timer for the next try: the backoff, or what is left of the timeout (under the gate).</summary>
        private bool Arm()
        {
            long now = Stopwatch.GetTimestamp();
            long next = Math.Min(now + (_backoff * Stopwatch.Frequency / 1000), deadline);
            return _timer!.Schedule(next);
        }

        /// <summary>Marks the outcome, closes a descriptor still held and releases the timer and the registration (under the gate).</summary>
        private void Complete(UnixConnectResult result, out UnixConnectResult outcome)
        {
            _finished = true;
            if (_fd >= 0)
            {
                Interop.Sys.Close(_fd);
                _fd = -1;
            }

            _timer?.Dispose();
            _cancel.Unregister();
            outcome = result;
        }
    }
}
