using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// The accept side of <see cref="HybridVsockListener"/>, on the device loop: bounded <c>accept4</c> passes on the
/// listening socket's readiness or the accept timer, the handshake bound (stop asking for readability, resume when a
/// slot frees), and the back-off after failed accepts. Must never block (the socket is non-blocking), take more than
/// <see cref="HybridVsockListener.AcceptsPerPass"/> connections in one go, or stop serving after one failure.
/// </summary>
internal sealed partial class HybridVsockListener
{
    /// <summary>Takes up to <see cref="AcceptsPerPass"/> connections (on the loop).</summary>
    private void AcceptPass()
    {
        for (int i = 0; i < AcceptsPerPass; i++)
        {
            lock (_lock)
            {
                if (_disposed)
                {
                    return;
                }

                if (_handshakes.Count + _overflow.Count >= _maxPending)
                {
                    // Full: leave connections in the backlog and stop asking for readability until a slot frees.
                    _paused = true;
                    return;
                }
            }

            int error = Accept(out int fd);
            if (error == 0)
            {
                _backoff = 0;
                Interlocked.Increment(ref _accepted);
                StartHandshake(fd);
                continue;
            }

            if (error == Interop.Errors.EAGAIN)
            {
                _backoff = 0;
                _watch?.RequestReadable();
                return;
            }

            if (error == Interop.Errors.EBADF)
            {
                // The listening socket is closed: disposed.
                return;
            }

            Interlocked.Increment(ref _acceptErrors);
            if (error is Interop.Errors.ECONNABORTED or Interop.Errors.ECONNRESET or Interop.Errors.EINTR)
            {
                // That connection only: take the next.
                continue;
            }

            // Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) or worse: back off instead of spinning.
            BackOff();
            return;
        }

        // More may wait: come back on the next turn, after the loop served its other work.
        _acceptTimer?.Schedule(0);
    }

    private void BackOff()
    {
        _backoff = Math.Clamp(_backoff * 2, MinBackoffMilliseconds, MaxBackoffMilliseconds);
        _acceptTimer?.Schedule(Stopwatch.GetTimestamp() + (_backoff * Stopwatch.Frequency / 1000));
    }

    /// <summary>One <c>accept4</c> on the listening socket (its handle held so a concurrent dispose cannot reuse the descriptor).</summary>
    /// <returns>0 with <paramref name="fd"/> set, or the errno.</returns>
    private unsafe int Accept(out int fd)
    {
        fd = -1;
        SafeHandle handle = _listener.SafeHandle;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
        }
        catch (ObjectDisposedException)
        {
        }

        if (!added)
        {
            return Interop.Errors.EBADF;
        }

        try
        {
            fd = Interop.Sys.Accept4((int)handle.DangerousGetHandle(), null, null, Interop.Sys.SockNonBlock | Interop.Sys.SockCloexec);
            return fd >= 0 ? 0 : Marshal.GetLastPInvokeError();
        }
        finally
        {
            handle.DangerousRelease();
        }
    }

    private void StartHandshake(int fd)
    {
        Socket socket;
        try
        {
            socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
        }
        catch (Exception e) when (e is SocketException or ArgumentException)
        {
            Interop.Sys.Close(fd);
            CountFailure(HandshakeFailure.ConnectionError, ConnectCommandError.None);
            return;
        }

        var handshake = new HostHandshake(this, socket, SocketType);
        IVsockFdPoller? loop;
        lock (_lock)
        {
            loop = _loop;
            if (_disposed || loop is null)
            {
                loop = null;
            }
            else
            {
                _handshakes.Add(handshake);
                UpdateCounts();
            }
        }

        if (loop is null)
        {
            socket.Dispose();
            CountFailure(HandshakeFailure.ListenerStopped, ConnectCommandError.None);
            return;
        }

        try
        {
            handshake.Start(loop, Stopwatch.GetTimestamp() + _handshakeTicks);
        }
        catch (Exception)
        {
            // Nothing above should throw; this connection only.
            if (handshake.Abort())
            {
                OnHandshakeDone(handshake, null, HandshakeFailure.ConnectionError, ConnectCommandError.None);
            }
        }
    }

    /// <summary>The listening socket's readiness and the accept timer (resume, next pass, back-off), on the loop.</summary>
    private sealed class Acceptor(HybridVsockListener listener) : IVsockFdHandler, IVsockTimerHandler
    {
        public void OnReady(VsockFdReadiness readiness) => listener.AcceptPass();

        public void OnTimer() => listener.AcceptPass();

        public void OnFault(Exception exception) => Contain();

        public void OnTimerFault(Exception exception) => Contain();

        private void Contain()
        {
            // An accept pass threw (a bug): count it and try again later rather than stop serving.
            Interlocked.Increment(ref listener._acceptErrors);
            listener.BackOff();
        }
    }
}
