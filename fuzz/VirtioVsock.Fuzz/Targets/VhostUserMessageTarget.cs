using System.Buffers.Binary;
using System.Net.Sockets;
using Vhost.User;
using VirtioVsock.Fuzz.Engine;
using VirtioVsock.Fuzz.Vhost;

namespace VirtioVsock.Fuzz.Targets;

/// <summary>
/// <c>vhost-user-message</c>: the input is a byte stream of vhost-user messages sent by a QEMU-like frontend
/// over a socketpair to a <see cref="VhostUserConnection"/> serving a <see cref="FuzzBackend"/>.
/// </summary>
/// <remarks>
/// <para>Input: <c>u8 options</c>, then the wire bytes. The harness walks the stream with the same framing
/// the connection uses (12-byte header, <c>size</c> bytes of payload) and attaches descriptors the way
/// QEMU would: memfds sized for the regions of <c>SET_MEM_TABLE</c> / <c>ADD_MEM_REG</c>, an eventfd for
/// <c>SET_VRING_KICK/CALL/ERR</c> unless the no-fd bit is set. Options: bits 0-1 the vring descriptor kind
/// (eventfd, pipe, memfd, none); bit 2 one memfd too many for a table; bit 3 memfds one page too small;
/// bit 4 a stray eventfd on every other message; bit 5 an fd with REM_MEM_REG; bit 6 kick every eventfd
/// sent, after the stream.</para>
/// <para>Invariants: <see cref="VhostUserConnection.Run"/> neither throws nor logs an exception, returns
/// within <see cref="Deadline"/> of the frontend closing, closes its end; every reply is framed
/// (version 1 | REPLY, size at most 4096) and answers a request that was sent; the backend saw no
/// impossible call (<see cref="FuzzBackend.Violations"/>) and holds nothing after teardown; no descriptor leaks.</para>
/// </remarks>
public static class VhostUserMessageTarget
{
    /// <summary>How long the connection may take to finish after the frontend closes.</summary>
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private const int HeaderSize = 12;
    private const int MaxPayload = 4096;
    private const long MaxMemfd = 1L << 30;

    /// <summary>The <c>vhost-user-message</c> target.</summary>
    /// <param name="input">The input.</param>
    public static void Run(ReadOnlySpan<byte> input)
    {
        Dictionary<string, string> before = OpenDescriptors();
        RunOnce(input);
        Dictionary<string, string> after = OpenDescriptors();
        if (after.Count > before.Count)
        {
            // Threads of the runtime may open a descriptor at any time: look again before calling it a leak.
            Thread.Sleep(50);
            after = OpenDescriptors();
            string[] added = [.. after.Where(fd => !before.TryGetValue(fd.Key, out string? target) || target != fd.Value).Select(fd => $"{fd.Key} -> {fd.Value}")];
            FuzzInvariantException.Check(after.Count <= before.Count, $"descriptors leaked: {before.Count} open before the input, {after.Count} after; new: {string.Join(", ", added)}");
        }
    }

    private static void RunOnce(ReadOnlySpan<byte> input)
    {
        var reader = new FuzzReader(input);
        byte options = reader.U8();
        ReadOnlySpan<byte> wire = reader.Rest();

        var backend = new FuzzBackend();
        var logger = new FuzzLogger();
        using FrontendSocket frontend = FrontendSocket.CreatePair(out Socket backendSocket);
        var connection = new VhostUserConnection(backendSocket, backend, logger);
        Exception? runError = null;
        var server = new Thread(() =>
        {
            try
            {
                connection.Run();
            }
            catch (Exception exception)
            {
                runError = exception;
            }
        })
        { IsBackground = true, Name = "fuzz-vhost-user" };

        var replies = new MemoryStream();
        bool replyEof = false;
        var replyReader = new Thread(() =>
        {
            byte[] buffer = new byte[16 * 1024];
            while (true)
            {
                int read = frontend.Receive(buffer, (int)Deadline.TotalMilliseconds);
                if (read <= 0)
                {
                    replyEof = read == 0;
                    return;
                }

                replies.Write(buffer, 0, read);
            }
        })
        { IsBackground = true, Name = "fuzz-vhost-user-replies" };

        server.Start();
        replyReader.Start();
        var sent = new HashSet<uint>();
        var kickable = new List<int>();
        SendStream(frontend, wire, options, sent, kickable);
        if ((options & 0x40) != 0)
        {
            Span<byte> one = stackalloc byte[8];
            one[0] = 1;
            foreach (int fd in kickable)
            {
                unsafe
                {
                    fixed (byte* pointer = one)
                    {
                        _ = Interop.Sys.Write(fd, pointer, 8);
                    }
                }
            }
        }

        frontend.ShutdownWrite();
        bool finished = server.Join(Deadline);
        if (!finished)
        {
            connection.Stop();
            server.Join(Deadline);
            throw new FuzzInvariantException($"the connection did not finish within {Deadline.TotalSeconds} s of the frontend closing");
        }

        FuzzInvariantException.Check(replyReader.Join(Deadline) && replyEof, "the connection's socket was not closed after Run returned");
        connection.Dispose();
        if (runError is not null)
        {
            throw new FuzzInvariantException("VhostUserConnection.Run threw", runError);
        }

        if (!logger.Exceptions.IsEmpty)
        {
            throw new FuzzInvariantException("the connection logged an exception: " + string.Join(" | ", logger.Exceptions));
        }

        IReadOnlyList<string> violations = backend.Violations;
        FuzzInvariantException.Check(violations.Count == 0, "impossible backend calls: " + string.Join("; ", violations));
        FuzzInvariantException.Check(!backend.HoldsState, "the backend still holds memory or a started queue after teardown");
        CheckReplies(replies.ToArray(), sent);
    }

    private static void SendStream(FrontendSocket frontend, ReadOnlySpan<byte> wire, byte options, HashSet<uint> sent, List<int> kickable)
    {
        Span<int> fds = stackalloc int[16];
        bool strayToggle = false;
        while (!wire.IsEmpty)
        {
            if (wire.Length < HeaderSize)
            {
                frontend.Send(wire, default);
                return;
            }

            uint request = BinaryPrimitives.ReadUInt32LittleEndian(wire);
            uint size = BinaryPrimitives.ReadUInt32LittleEndian(wire[8..]);
            sent.Add(request);
            if (size > MaxPayload)
            {
                // The connection closes after such a header: send it and what follows, it is never read.
                _ = frontend.Send(wire[..HeaderSize], default) && frontend.Send(wire[HeaderSize..], default);
                return;
            }

            int length = Math.Min(HeaderSize + (int)size, wire.Length);
            ReadOnlySpan<byte> message = wire[..length];
            ReadOnlySpan<byte> payload = message[HeaderSize..];
            int count = DescriptorsFor(frontend, (VhostRequest)request, payload, options, fds, kickable);
            if (count == 0 && (options & 0x10) != 0)
            {
                strayToggle = !strayToggle;
                if (strayToggle)
                {
                    fds[count++] = frontend.NewEventFd();
                }
            }

            if (!frontend.Send(message, fds[..count].ToArray()))
            {
                return;
            }

            wire = wire[length..];
        }
    }

    private static int DescriptorsFor(FrontendSocket frontend, VhostRequest request, ReadOnlySpan<byte> payload, byte options, Span<int> fds, List<int> kickable)
    {
        long shrink = (options & 0x08) != 0 ? 4096 : 0;
        switch (request)
        {
            case VhostRequest.SetMemTable when payload.Length >= 8:
                {
                    int regions = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(payload), 8u);
                    int count = 0;
                    for (int i = 0; i < regions; i++)
                    {
                        fds[count++] = frontend.NewMemfd(MemfdSize(payload, 8 + (32 * i), shrink));
                    }

                    if ((options & 0x04) != 0)
                    {
                        fds[count++] = frontend.NewMemfd(4096);
                    }

                    return count;
                }

            case VhostRequest.AddMemReg:
                fds[0] = frontend.NewMemfd(MemfdSize(payload, 8, shrink));
                return 1;
            case VhostRequest.RemMemReg when (options & 0x20) != 0:
                fds[0] = frontend.NewMemfd(4096);
                return 1;
            case VhostRequest.SetVringKick or VhostRequest.SetVringCall or VhostRequest.SetVringErr:
                {
                    ulong value = payload.Length >= 8 ? BinaryPrimitives.ReadUInt64LittleEndian(payload) : 0;
                    if ((value & 0x100) != 0)
                    {
                        return 0;
                    }

                    int fd = (options & 3) switch
                    {
                        0 => frontend.NewEventFd(),
                        1 => frontend.NewPipe(),
                        2 => frontend.NewMemfd(4096),
                        _ => -1,
                    };
                    if (fd < 0)
                    {
                        return 0;
                    }

                    if ((options & 3) == 0)
                    {
                        kickable.Add(fd);
                    }

                    fds[0] = fd;
                    return 1;
                }

            case VhostRequest.SetBackendReqFd:
                fds[0] = frontend.NewEventFd();
                return 1;
            default:
                return 0;
        }
    }

    /// <summary>The size of the file a region needs (<c>mmap_offset + size</c>), capped, less <paramref name="shrink"/>.</summary>
    private static long MemfdSize(ReadOnlySpan<byte> payload, int regionOffset, long shrink)
    {
        if (payload.Length < regionOffset + 32)
        {
            return 4096;
        }

        ulong size = BinaryPrimitives.ReadUInt64LittleEndian(payload[(regionOffset + 8)..]);
        ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(payload[(regionOffset + 24)..]);
        ulong end = offset + size;
        if (end < size || end > MaxMemfd)
        {
            return 4096;
        }

        return Math.Max((long)end - shrink, 0);
    }

    private static void CheckReplies(ReadOnlySpan<byte> replies, HashSet<uint> sent)
    {
        while (!replies.IsEmpty)
        {
            FuzzInvariantException.Check(replies.Length >= HeaderSize, $"a reply of {replies.Length} bytes is shorter than a header");
            uint request = BinaryPrimitives.ReadUInt32LittleEndian(replies);
            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(replies[4..]);
            uint size = BinaryPrimitives.ReadUInt32LittleEndian(replies[8..]);
            FuzzInvariantException.Check(flags == 0x5, $"reply to request {request} with flags 0x{flags:x}");
            FuzzInvariantException.Check(size <= MaxPayload && replies.Length >= HeaderSize + (int)size, $"reply to request {request} with size {size} ({replies.Length - HeaderSize} bytes follow)");
            FuzzInvariantException.Check(sent.Contains(request), $"reply to request {request}, which was never sent");
            replies = replies[(HeaderSize + (int)size)..];
        }
    }

    private static Dictionary<string, string> OpenDescriptors()
    {
        var descriptors = new Dictionary<string, string>();
        try
        {
            foreach (string path in Directory.GetFiles("/proc/self/fd"))
            {
                string? target = null;
                try
                {
                    target = new FileInfo(path).LinkTarget;
                }
                catch (IOException)
                {
                }

                // Only the kinds this target creates: the runtime maps assemblies and makes epoll/timer
                // descriptors of its own as code paths are first used.
                if (target is not null && (target.StartsWith("socket:", StringComparison.Ordinal) || target.StartsWith("pipe:", StringComparison.Ordinal)
                    || target.StartsWith("/memfd:", StringComparison.Ordinal) || target == "anon_inode:[eventfd]"))
                {
                    descriptors[Path.GetFileName(path)] = target;
                }
            }
        }
        catch (IOException)
        {
        }

        return descriptors;
    }
}
