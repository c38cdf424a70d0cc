using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Virtio.Vsock.Backends.Unix;

namespace Virtio.Vsock.Device.Tests.Unix;

public sealed class UnixSocketIoTests : IDisposable
{
    private readonly UnixTestSockets _sockets = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _sockets.Dispose();

    [Fact(Timeout = 10_000)]
    public async Task Receive_on_an_empty_socket_would_block_instead_of_blocking()
    {
        (Socket a, Socket b) = await _sockets.PairAsync();
        using (a)
        using (b)
        {
            // Even a socket left in blocking mode is never blocked on.
            Assert.True(b.Blocking);
            Assert.Equal(UnixIoStatus.WouldBlock, UnixSocketIo.Receive(b, new byte[16]).Status);
            Assert.True(UnixSocketIo.ConfigureForDataPath(b).IsOk);
            Assert.False(b.Blocking);
            Assert.Equal(UnixIoStatus.WouldBlock, UnixSocketIo.Receive(b, new byte[16]).Status);
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task Shutdown_send_is_seen_as_end_of_stream_and_the_other_direction_keeps_working()
    {
        (Socket host, Socket device) = await _sockets.PairAsync();
        using (host)
        using (device)
        {
            UnixSocketIo.ConfigureForDataPath(device);
            await host.SendAsync("last words"u8.ToArray(), Ct);
            host.Shutdown(SocketShutdown.Send);

            byte[] buffer = new byte[64];
            Assert.True((await SocketWait.ReadableAsync(device, Ct)).IsOk);
            UnixIoResult data = UnixSocketIo.Receive(device, buffer);
            Assert.Equal(10, data.Bytes);
            UnixIoResult eof = UnixSocketIo.Receive(device, buffer);
            Assert.Equal(UnixIoStatus.EndOfStream, eof.Status);
            Assert.True(eof.IsFinal);
            Assert.Equal(UnixIoStatus.EndOfStream, UnixSocketIo.Receive(device, buffer).Status);

            // Half-closed: the device can still send to the host, then half-close its side.
            Assert.True(UnixSocketIo.Send(device, "reply"u8).IsOk);
            Assert.True(UnixSocketIo.ShutdownSend(device).IsOk);
            Assert.True(UnixSocketIo.ShutdownSend(device).IsOk);
            Assert.Equal("reply", Encoding.ASCII.GetString(await UnixTestSockets.ReadToEndAsync(host)));
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task A_peer_closing_with_unread_data_is_a_reset_not_an_end_of_stream()
    {
        (Socket host, Socket device) = await _sockets.PairAsync();
        using (device)
        {
            Assert.True(UnixSocketIo.Send(device, "never read"u8).IsOk);
            host.Dispose();
            UnixIoResult result = UnixSocketIo.Receive(device, new byte[16]);
            Assert.Equal(UnixIoStatus.Reset, result.Status);
            Assert.True(result.IsFinal);
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task Sending_to_a_closed_peer_is_a_value_not_a_signal_or_exception()
    {
        (Socket host, Socket device) = await _sockets.PairAsync();
        using (device)
        {
            host.Dispose();
            UnixIoResult result = UnixSocketIo.Send(device, "x"u8);
            Assert.Equal(UnixIoStatus.PeerClosed, result.Status);
            Assert.Equal(32, result.Errno);
            Assert.Contains("errno 32", result.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task A_disposed_socket_is_reported_not_thrown()
    {
        (Socket host, Socket device) = await _sockets.PairAsync();
        host.Dispose();
        device.Dispose();
        Assert.Equal(UnixIoStatus.SocketClosed, UnixSocketIo.Receive(device, new byte[4]).Status);
        Assert.Equal(UnixIoStatus.SocketClosed, UnixSocketIo.Send(device, "x"u8).Status);
        Assert.Equal(UnixIoStatus.SocketClosed, UnixSocketIo.ShutdownSend(device).Status);
        Assert.Equal(UnixIoStatus.SocketClosed, UnixSocketIo.ConfigureForDataPath(device).Status);
        Assert.Equal(UnixIoStatus.SocketClosed, (await SocketWait.ReadableAsync(device, Ct)).Status);
    }

    [Fact(Timeout = 10_000)]
    public async Task A_full_send_buffer_would_block_and_drains_later()
    {
        (Socket host, Socket device) = await _sockets.PairAsync();
        using (host)
        using (device)
        {
            byte[] chunk = new byte[64 * 1024];
            long sent = 0;
            UnixIoResult result;
            int guard = 0;
            while ((result = UnixSocketIo.Send(device, chunk)).IsOk)
            {
                sent += result.Bytes;
                Assert.True(++guard < 10_000);
            }

            Assert.Equal(UnixIoStatus.WouldBlock, result.Status);
            Assert.False(result.IsFinal);
            byte[] drained = await UnixTestSockets.ReadExactlyOrEofAsync(host, (int)sent);
            Assert.Equal(sent, drained.Length);
            Assert.True(UnixSocketIo.Send(device, chunk).IsOk);
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task WaitReadable_waits_for_data_and_consumes_nothing()
    {
        (Socket host, Socket device) = await _sockets.PairAsync();
        using (host)
        using (device)
        {
            ValueTask<UnixIoResult> wait = SocketWait.ReadableAsync(device, Ct);
            Assert.False(wait.IsCompleted);

            // Sentinel: a wait on another pair, started after and given data, completes; the runtime's socket engine
            // has then polled for readiness after the first wait was registered, and the first still waits.
            (Socket sentinelHost, Socket sentinelDevice) = await _sockets.PairAsync();
            using (sentinelHost)
            using (sentinelDevice)
            {
                ValueTask<UnixIoResult> sentinel = SocketWait.ReadableAsync(sentinelDevice, Ct);
                await sentinelHost.SendAsync("s"u8.ToArray(), Ct);
                Assert.True((await sentinel).IsOk);
            }

            Assert.False(wait.IsCompleted);
            await host.SendAsync("abc"u8.ToArray(), Ct);
            Assert.True((await wait).IsOk);
            byte[] buffer = new byte[8];
            Assert.Equal(3, UnixSocketIo.Receive(device, buffer).Bytes);

            using var cts = new CancellationTokenSource(50);
            Assert.Equal(UnixIoStatus.Canceled, (await SocketWait.ReadableAsync(device, cts.Token)).Status);

            host.Shutdown(SocketShutdown.Send);
            Assert.True((await SocketWait.ReadableAsync(device, Ct)).IsOk);
            Assert.Equal(UnixIoStatus.EndOfStream, UnixSocketIo.Receive(device, buffer).Status);
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task Scatter_receive_and_gather_send_move_bytes_with_one_call()
    {
        (Socket host, Socket device) = await _sockets.PairAsync();
        using (host)
        using (device)
        {
            byte[] a = new byte[3];
            byte[] b = new byte[5];
            GCHandle ha = GCHandle.Alloc(a, GCHandleType.Pinned);
            GCHandle hb = GCHandle.Alloc(b, GCHandleType.Pinned);
            try
            {
                UnixIoSegment[] segments = [new(ha.AddrOfPinnedObject(), a.Length), new(hb.AddrOfPinnedObject(), b.Length)];
                await host.SendAsync("abcdefghij"u8.ToArray(), Ct);
                Assert.True((await SocketWait.ReadableAsync(device, Ct)).IsOk);
                UnixIoResult received = UnixSocketIo.Receive(device, segments);
                Assert.Equal(8, received.Bytes);
                Assert.Equal("abc", Encoding.ASCII.GetString(a));
                Assert.Equal("defgh", Encoding.ASCII.GetString(b));

                UnixIoResult sent = UnixSocketIo.Send(device, segments);
                Assert.Equal(8, sent.Bytes);
                Assert.Equal("abcdefgh", Encoding.ASCII.GetString(await UnixTestSockets.ReadExactlyOrEofAsync(host, 8)));
                Assert.Equal(UnixIoStatus.Error, UnixSocketIo.Send(device, new UnixIoSegment[UnixSocketIo.MaxSegments + 1]).Status);
            }
            finally
            {
                ha.Free();
                hb.Free();
            }
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task SeqPacket_peek_tells_the_length_and_a_short_buffer_reports_truncation()
    {
        (Socket host, Socket device) = await _sockets.PairAsync(SocketType.Seqpacket);
        using (host)
        using (device)
        {
            Assert.True(UnixSocketIo.ConfigureForDataPath(device).IsOk);
            Assert.Equal(UnixIoStatus.WouldBlock, UnixSocketIo.PeekMessage(device).Status);
            await host.SendAsync("0123456789"u8.ToArray(), Ct);
            await host.SendAsync("xyz"u8.ToArray(), Ct);
            Assert.True((await SocketWait.ReadableAsync(device, Ct)).IsOk);

            UnixIoResult peek = UnixSocketIo.PeekMessage(device);
            Assert.True(peek.IsOk);
            Assert.Equal(10, peek.MessageLength);
            Assert.Equal(10, UnixSocketIo.PeekMessage(device).MessageLength);

            byte[] small = new byte[4];
            UnixIoResult truncated = UnixSocketIo.ReceiveMessage(device, small);
            Assert.True(truncated.IsOk);
            Assert.True(truncated.Truncated);
            Assert.Equal(4, truncated.Bytes);
            Assert.Equal(10, truncated.MessageLength);
            Assert.Equal("0123", Encoding.ASCII.GetString(small));

            // The rest of that message is gone; the next one is intact.
            byte[] buffer = new byte[16];
            UnixIoResult next = UnixSocketIo.ReceiveMessage(device, buffer);
            Assert.Equal(3, next.Bytes);
            Assert.Equal(3, next.MessageLength);
            Assert.False(next.Truncated);
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task SeqPacket_empty_messages_are_told_apart_from_end_of_stream()
    {
        (Socket host, Socket device) = await _sockets.PairAsync(SocketType.Seqpacket);
        using (host)
        using (device)
        {
            Assert.True(UnixSocketIo.ConfigureForDataPath(device).IsOk);
            await host.SendAsync(Array.Empty<byte>(), Ct);
            await host.SendAsync("z"u8.ToArray(), Ct);
            host.Shutdown(SocketShutdown.Send);
            Assert.True((await SocketWait.ReadableAsync(device, Ct)).IsOk);

            UnixIoResult peekEmpty = UnixSocketIo.PeekMessage(device);
            Assert.Equal(UnixIoStatus.Ok, peekEmpty.Status);
            Assert.Equal(0, peekEmpty.MessageLength);
            byte[] buffer = new byte[8];
            UnixIoResult empty = UnixSocketIo.ReceiveMessage(device, buffer);
            Assert.Equal(UnixIoStatus.Ok, empty.Status);
            Assert.Equal(0, empty.MessageLength);
            Assert.Equal(1, UnixSocketIo.ReceiveMessage(device, buffer).Bytes);
            Assert.Equal(UnixIoStatus.EndOfStream, UnixSocketIo.PeekMessage(device).Status);
            Assert.Equal(UnixIoStatus.EndOfStream, UnixSocketIo.ReceiveMessage(device, buffer).Status);

            // Half-close: the device still sends messages to the host.
            Assert.True(UnixSocketIo.SendMessage(device, ReadOnlySpan<byte>.Empty).IsOk);
            Assert.True(UnixSocketIo.SendMessage(device, "back"u8).IsOk);
            Assert.Equal(0, await host.ReceiveAsync(buffer, Ct));
            Assert.Equal(4, await host.ReceiveAsync(buffer, Ct));
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task SeqPacket_scatter_receive_and_gather_send_keep_one_message()
    {
        (Socket host, Socket device) = await _sockets.PairAsync(SocketType.Seqpacket);
        using (host)
        using (device)
        {
            UnixSocketIo.ConfigureForDataPath(device);
            byte[] first = new byte[4];
            byte[] second = new byte[100];
            GCHandle h1 = GCHandle.Alloc(first, GCHandleType.Pinned);
            GCHandle h2 = GCHandle.Alloc(second, GCHandleType.Pinned);
            try
            {
                UnixIoSegment[] segments = [new(h1.AddrOfPinnedObject(), 4), new(h2.AddrOfPinnedObject(), 6)];
                await host.SendAsync("0123456789"u8.ToArray(), Ct);
                Assert.True((await SocketWait.ReadableAsync(device, Ct)).IsOk);
                UnixIoResult received = UnixSocketIo.ReceiveMessage(device, segments);
                Assert.Equal(10, received.Bytes);
                Assert.False(received.Truncated);
                Assert.Equal("0123", Encoding.ASCII.GetString(first));
                Assert.Equal("456789", Encoding.ASCII.GetString(second, 0, 6));

                Assert.Equal(10, UnixSocketIo.SendMessage(device, segments).Bytes);
                byte[] buffer = new byte[32];
                Assert.Equal(10, await host.ReceiveAsync(buffer, Ct));
                Assert.Equal("0123456789", Encoding.ASCII.GetString(buffer, 0, 10));
            }
            finally
            {
                h1.Free();
                h2.Free();
            }
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task SeqPacket_a_message_larger_than_the_send_buffer_is_a_value()
    {
        (Socket host, Socket device) = await _sockets.PairAsync(SocketType.Seqpacket);
        using (host)
        using (device)
        {
            UnixIoResult result = UnixSocketIo.SendMessage(device, new byte[4 * 1024 * 1024]);
            Assert.Equal(UnixIoStatus.MessageTooLarge, result.Status);
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task The_synchronous_data_path_does_not_allocate()
    {
        (Socket host, Socket device) = await _sockets.PairAsync();
        (Socket seqHost, Socket seqDevice) = await _sockets.PairAsync(SocketType.Seqpacket);
        using (host)
        using (device)
        using (seqHost)
        using (seqDevice)
        {
            UnixSocketIo.ConfigureForDataPath(device);
            UnixSocketIo.ConfigureForDataPath(seqDevice);
            byte[] buffer = new byte[256];
            UnixSocketIo.Send(device, buffer);
            UnixSocketIo.Receive(host, buffer);
            UnixSocketIo.SendMessage(seqDevice, buffer);
            UnixSocketIo.PeekMessage(seqHost);
            UnixSocketIo.ReceiveMessage(seqHost, buffer);

            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 1000; i++)
            {
                UnixSocketIo.Send(device, buffer);
                UnixSocketIo.Receive(host, buffer);
                UnixSocketIo.Receive(host, buffer);
                UnixSocketIo.SendMessage(seqDevice, buffer);
                UnixSocketIo.PeekMessage(seqHost);
                UnixSocketIo.ReceiveMessage(seqHost, buffer);
                UnixSocketIo.ReceiveMessage(seqHost, buffer);
            }

            Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task Descriptors_a_peer_passes_are_closed_not_kept()
    {
        (Socket host, Socket device) = await _sockets.PairAsync(SocketType.Seqpacket);
        using (host)
        using (device)
        {
            string marker = _sockets.NewPath("marker");
            await File.WriteAllTextAsync(marker, "m", Ct);
            for (int i = 0; i < 20; i++)
            {
                using FileStream file = File.OpenRead(marker);
                Assert.True(SendWithDescriptor(host, (int)file.SafeFileHandle.DangerousGetHandle()));
            }

            // Without SO_PASSCRED and with it, nothing stays open.
            byte[] buffer = new byte[16];
            for (int i = 0; i < 10; i++)
            {
                Assert.Equal(3, UnixSocketIo.ReceiveMessage(device, buffer).Bytes);
            }

            UnixSocketIo.ConfigureForDataPath(device);
            for (int i = 0; i < 10; i++)
            {
                Assert.True(UnixSocketIo.PeekMessage(device).IsOk);
                Assert.Equal(3, UnixSocketIo.ReceiveMessage(device, buffer).Bytes);
            }

            // Only a descriptor we received and kept could still point at the marker file.
            Assert.DoesNotContain(
                Directory.GetFiles("/proc/self/fd"),
                fd => string.Equals(new FileInfo(fd).LinkTarget, marker, StringComparison.Ordinal));
        }
    }

    private static unsafe bool SendWithDescriptor(Socket socket, int fd)
    {
        byte* data = stackalloc byte[3] { (byte)'f', (byte)'d', (byte)'!' };
        Iov iov = new() { Base = data, Length = 3 };
        byte* control = stackalloc byte[24];
        new Span<byte>(control, 24).Clear();
        *(ulong*)control = 20; // CMSG_LEN(sizeof(int))
        *(int*)(control + 8) = 1; // SOL_SOCKET
        *(int*)(control + 12) = 1; // SCM_RIGHTS
        *(int*)(control + 16) = fd;
        Msg msg = new() { Iov = &iov, IovLength = 1, Control = control, ControlLength = 24 };
        return SendMsg((int)socket.SafeHandle.DangerousGetHandle(), &msg, 0) == 3;
    }

    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct Iov
    {
        public byte* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct Msg
    {
        public void* Name;
        public uint NameLength;
        public Iov* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [DllImport("libc", EntryPoint = "sendmsg")]
    private static extern unsafe nint SendMsg(int fd, Msg* message, int flags);
}
