using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace VirtioVsock.Fuzz.Vhost;

/// <summary>
/// The frontend's end of a Unix stream socketpair: sends bytes with SCM_RIGHTS descriptors the way QEMU
/// does, and owns the descriptors it created for that (memfds, eventfds, pipes) until disposed.
/// Either one end of a socketpair (the fuzzer) or a client connected to a backend's listening socket
/// (bench/VsockLoad links this file).
/// </summary>
internal sealed unsafe class FrontendSocket : IDisposable
{
    private readonly List<int> _owned = [];
    private int _fd;

    private FrontendSocket(int fd)
    {
        _fd = fd;
    }

    /// <summary>Creates a connected pair: this frontend end and the backend's end as a <see cref="Socket"/>.</summary>
    /// <param name="backend">The other end, for the connection under test (which owns it).</param>
    /// <returns>The frontend end.</returns>
    public static FrontendSocket CreatePair(out Socket backend)
    {
        int* fds = stackalloc int[2];
        if (Interop.Sys.SocketPair(Interop.Sys.AfUnix, Interop.Sys.SockStream | Interop.Sys.SockCloexec, 0, fds) != 0)
        {
            throw new IOException($"socketpair failed: errno {Marshal.GetLastPInvokeError()}");
        }

        backend = new Socket(new SafeSocketHandle(fds[1], ownsHandle: true));
        return new FrontendSocket(fds[0]);
    }

    /// <summary>Connects to a backend listening on the Unix socket <paramref name="path"/>, as QEMU's chardev does.</summary>
    /// <param name="path">The socket path (at most 107 bytes in UTF-8).</param>
    /// <returns>The frontend end.</returns>
    /// <exception cref="IOException">The connect failed (the message names the errno).</exception>
    public static FrontendSocket Connect(string path)
    {
        if (!Interop.Sys.SockaddrUn.TryCreate(path, out Interop.Sys.SockaddrUn address, out uint length))
        {
            throw new IOException($"Socket path empty or longer than 107 bytes: {path}");
        }

        int fd = Interop.Sys.Socket(Interop.Sys.AfUnix, Interop.Sys.SockStream | Interop.Sys.SockCloexec, 0);
        if (fd < 0)
        {
            throw new IOException($"socket failed: errno {Marshal.GetLastPInvokeError()}");
        }

        if (Interop.Sys.Connect(fd, &address, length) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            _ = Interop.Sys.Close(fd);
            throw new IOException($"connect to {path} failed: errno {errno}");
        }

        return new FrontendSocket(fd);
    }

    /// <summary>The raw descriptor (for reading replies).</summary>
    public int Fd => _fd;

    /// <summary>A memfd of <paramref name="size"/> bytes (sparse), owned by this socket.</summary>
    /// <param name="size">The file size.</param>
    /// <returns>The descriptor, or -1 when it could not be made.</returns>
    public int NewMemfd(long size)
    {
        int fd = Interop.Sys.MemfdCreate("vsock-fuzz-ram", Interop.Sys.MfdCloexec);
        if (fd < 0)
        {
            return -1;
        }

        _owned.Add(fd);
        _ = Interop.Sys.FTruncate(fd, size);
        return fd;
    }

    /// <summary>An eventfd, owned by this socket.</summary>
    /// <returns>The descriptor, or -1.</returns>
    public int NewEventFd()
    {
        int fd = Interop.Sys.EventFd(0, Interop.Sys.EfdCloexec | Interop.Sys.EfdNonBlock);
        if (fd >= 0)
        {
            _owned.Add(fd);
        }

        return fd;
    }

    /// <summary>The read end of a pipe (both ends owned by this socket).</summary>
    /// <returns>The descriptor, or -1.</returns>
    public int NewPipe()
    {
        int* fds = stackalloc int[2];
        if (Interop.Sys.Pipe2(fds, Interop.Sys.OCloexec) != 0)
        {
            return -1;
        }

        _owned.Add(fds[0]);
        _owned.Add(fds[1]);
        return fds[0];
    }

    /// <summary>Sends all of <paramref name="data"/>, the descriptors riding on the first byte.</summary>
    /// <param name="data">The bytes (at least one when descriptors are given).</param>
    /// <param name="fds">Descriptors to pass (at most 16).</param>
    /// <returns>False when the peer is gone.</returns>
    public bool Send(ReadOnlySpan<byte> data, ReadOnlySpan<int> fds)
    {
        int controlLength = fds.IsEmpty ? 0 : ScmRights.SpaceFor(fds.Length);
        byte* control = stackalloc byte[Math.Max(controlLength, 1)];
        while (!data.IsEmpty)
        {
            nint sent;
            fixed (byte* pointer = data)
            {
                var iov = new Interop.Sys.IoVec { Base = pointer, Length = (nuint)data.Length };
                var message = new Interop.Sys.MsgHdr { Iov = &iov, IovLength = 1 };
                if (!fds.IsEmpty)
                {
                    ScmRights.Write(new Span<byte>(control, controlLength), fds);
                    message.Control = control;
                    message.ControlLength = (nuint)controlLength;
                }

                sent = Interop.Sys.SendMsg(_fd, &message, Interop.Sys.MsgNoSignal);
            }

            if (sent < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno is Interop.Errors.EINTR or Interop.Errors.EAGAIN)
                {
                    continue;
                }

                return false;
            }

            data = data[(int)sent..];
            fds = default;
        }

        return true;
    }

    /// <summary>Reads what the backend sent, waiting at most <paramref name="timeoutMs"/> for it.</summary>
    /// <param name="buffer">Where the bytes go.</param>
    /// <param name="timeoutMs">How long to wait for the first byte.</param>
    /// <returns>The bytes read; 0 at end of stream; -1 on timeout or error.</returns>
    public int Receive(Span<byte> buffer, int timeoutMs)
    {
        while (true)
        {
            var poll = new Interop.Sys.PollFd { Fd = _fd, Events = Interop.Sys.PollIn };
            int ready = Interop.Sys.Poll(&poll, 1, timeoutMs);
            if (ready < 0 && Marshal.GetLastPInvokeError() == Interop.Errors.EINTR)
            {
                continue;
            }

            if (ready <= 0)
            {
                return -1;
            }

            fixed (byte* pointer = buffer)
            {
                nint read = Interop.Sys.Read(_fd, pointer, (nuint)buffer.Length);
                if (read < 0 && Marshal.GetLastPInvokeError() is Interop.Errors.EINTR or Interop.Errors.EAGAIN)
                {
                    continue;
                }

                return read < 0 ? 0 : (int)read;
            }
        }
    }

    /// <summary>Half-closes: the backend reads end of stream after everything sent.</summary>
    public void ShutdownWrite() => _ = Interop.Sys.Shutdown(_fd, Interop.Sys.ShutWrite);

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (int fd in _owned)
        {
            _ = Interop.Sys.Close(fd);
        }

        _owned.Clear();
        if (_fd >= 0)
        {
            _ = Interop.Sys.Close(_fd);
            _fd = -1;
        }
    }
}
