using System.Net.Sockets;
using Virtio.Vsock;

namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// One accepted host connection reading its <c>CONNECT &lt;port&gt;\n</c> line, entirely on the device loop: the
/// socket is watched by the loop's epoll (<see cref="IVsockFdPoller.Watch"/>), every read is a non-blocking
/// <c>recvmsg</c> in <see cref="OnReady"/>, and the total deadline is a loop timer
/// (<see cref="IVsockFdPoller.CreateTimer"/>). No thread-pool continuation is involved.
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> the socket until the outcome (then a <see cref="HostConnectRequest"/> owns it, or it is
/// closed), its watch and its timer (both released before the outcome is reported, so the socket can be watched
/// again by the endpoint that carries the connection), a 32-byte buffer and the parser state.</para>
/// <para><b>Must never:</b> read more than <see cref="ConnectCommandParser.MaxLineLength"/> bytes of a stream (the
/// rest stays in the socket), block, report more than one outcome (the listener's dispose may race the loop: one
/// interlocked flag decides), or let an exception escape to the loop (a throwing read or timer closes this
/// connection as <see cref="HandshakeFailure.ConnectionError"/>).</para>
/// <para>Grammar and tolerance: <see cref="ConnectCommandParser"/>. Over SOCK_SEQPACKET the first message must be
/// exactly the line (no bytes after the <c>\n</c>).</para>
/// </remarks>
internal sealed class HostHandshake : IVsockFdHandler, IVsockTimerHandler
{
    private readonly HybridVsockListener _listener;
    private readonly Socket _socket;
    private readonly VsockType _type;
    private readonly byte[] _buffer = new byte[ConnectCommandParser.MaxLineLength];
    private ConnectCommandParser _parser;
    private int _filled;
    private IVsockFdWatch? _watch;
    private IVsockTimer? _timer;
    private int _finished;

    /// <summary>Creates the handshake around an accepted socket (it owns the socket from now on).</summary>
    /// <param name="listener">Told the outcome.</param>
    /// <param name="socket">The accepted, non-blocking socket.</param>
    /// <param name="type">Stream or seqpacket.</param>
    public HostHandshake(HybridVsockListener listener, Socket socket, VsockType type)
    {
        _listener = listener;
        _socket = socket;
        _type = type;
    }

    /// <summary>Watches the socket, arms the deadline and reads what is already there (on the loop).</summary>
    /// <param name="loop">The device loop.</param>
    /// <param name="deadline">The total deadline (a <see cref="System.Diagnostics.Stopwatch"/> timestamp).</param>
    public void Start(IVsockFdPoller loop, long deadline)
    {
        _watch = loop.Watch(_socket.SafeHandle, this, out _);
        _timer = loop.CreateTimer(this);
        if (Interlocked.CompareExchange(ref _finished, 0, 0) != 0)
        {
            // Aborted by the listener's dispose before the watch existed (a full fence each side: one of us sees both).
            _watch?.Dispose();
            _timer.Dispose();
            return;
        }

        if (_watch is null || !_timer.Schedule(deadline))
        {
            Fail(HandshakeFailure.ConnectionError, ConnectCommandError.None);
            return;
        }

        Read();
    }

    /// <inheritdoc/>
    public void OnReady(VsockFdReadiness readiness) => Read();

    /// <inheritdoc/>
    public void OnFault(Exception exception) => Fail(HandshakeFailure.ConnectionError, ConnectCommandError.None);

    /// <inheritdoc/>
    public void OnTimer() => Fail(HandshakeFailure.TimedOut, ConnectCommandError.None);

    /// <inheritdoc/>
    public void OnTimerFault(Exception exception) => Fail(HandshakeFailure.ConnectionError, ConnectCommandError.None);

    /// <summary>The listener stops: closes the socket unless the outcome was already reported.</summary>
    /// <returns>Whether this call closed it (the caller counts it as <see cref="HandshakeFailure.ListenerStopped"/>).</returns>
    public bool Abort()
    {
        if (!TryFinish())
        {
            return false;
        }

        _socket.Dispose();
        return true;
    }

    private void Read()
    {
        if (Volatile.Read(ref _finished) != 0)
        {
            return;
        }

        if (_type == VsockType.Stream)
        {
            ReadStream();
        }
        else
        {
            ReadMessage();
        }
    }

    private void ReadStream()
    {
        // Bounded: every pass consumes bytes of a 32-byte buffer, or ends.
        while (true)
        {
            UnixIoResult received = UnixSocketIo.Receive(_socket, _buffer.AsSpan(_filled));
            if (received.Status == UnixIoStatus.WouldBlock)
            {
                WaitReadable();
                return;
            }

            if (!received.IsOk && received.Status != UnixIoStatus.EndOfStream)
            {
                Fail(HandshakeFailure.ConnectionError, ConnectCommandError.None);
                return;
            }

            int n = received.IsOk ? received.Bytes : 0;
            ConnectParseResult result = n == 0 ? _parser.EndOfStream() : _parser.Feed(_buffer.AsSpan(_filled, n));
            if (result.IsComplete)
            {
                int start = _filled + result.BytesConsumed;
                int end = _filled + n;
                ReadOnlyMemory<byte> initial = start < end ? _buffer.AsMemory(start, end - start) : ReadOnlyMemory<byte>.Empty;
                Complete(result.Port, initial);
                return;
            }

            if (result.IsInvalid)
            {
                Fail(result.Error);
                return;
            }

            _filled += n;
        }
    }

    private void ReadMessage()
    {
        // Take the first message whole.
        UnixIoResult received = UnixSocketIo.ReceiveMessage(_socket, _buffer);
        if (received.Status == UnixIoStatus.WouldBlock)
        {
            WaitReadable();
            return;
        }

        if (received.Status == UnixIoStatus.EndOfStream)
        {
            Fail(HandshakeFailure.EndOfStream, ConnectCommandError.EndOfStream);
            return;
        }

        if (!received.IsOk)
        {
            Fail(HandshakeFailure.ConnectionError, ConnectCommandError.None);
            return;
        }

        if (received.Truncated)
        {
            Fail(HandshakeFailure.CommandTooLong, ConnectCommandError.TooLong);
            return;
        }

        ConnectParseResult result = _parser.Feed(_buffer.AsSpan(0, received.Bytes));
        if (result.IsComplete && result.BytesConsumed == received.Bytes)
        {
            Complete(result.Port, ReadOnlyMemory<byte>.Empty);
        }
        else if (result.IsInvalid)
        {
            Fail(result.Error);
        }
        else
        {
            Fail(HandshakeFailure.MessageNotOneLine, ConnectCommandError.None);
        }
    }

    private void WaitReadable()
    {
        if (_watch is null || !_watch.RequestReadable())
        {
            // The loop stopped (or the listener aborted us): nothing will wake this handshake again.
            Fail(HandshakeFailure.ListenerStopped, ConnectCommandError.None);
        }
    }

    private void Complete(uint port, ReadOnlyMemory<byte> initialData)
    {
        if (!TryFinish())
        {
            return;
        }

        _listener.OnHandshakeDone(this, new HostConnectRequest(_socket, _type, port, initialData), default, default);
    }

    private void Fail(ConnectCommandError error)
    {
        HandshakeFailure failure = error switch
        {
            ConnectCommandError.TooLong => HandshakeFailure.CommandTooLong,
            ConnectCommandError.EndOfStream => HandshakeFailure.EndOfStream,
            _ => HandshakeFailure.InvalidCommand,
        };
        Fail(failure, error);
    }

    private void Fail(HandshakeFailure failure, ConnectCommandError detail)
    {
        if (!TryFinish())
        {
            return;
        }

        _socket.Dispose();
        _listener.OnHandshakeDone(this, null, failure, detail);
    }

    /// <summary>Claims the one outcome and releases the watch and the timer (the socket may be watched again after).</summary>
    private bool TryFinish()
    {
        if (Interlocked.Exchange(ref _finished, 1) != 0)
        {
            return false;
        }

        _watch?.Dispose();
        _timer?.Dispose();
        return true;
    }
}
