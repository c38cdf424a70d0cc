using System.Net.Sockets;
using Virtio.Vsock.Backends.Unix;

namespace Virtio.Vsock.Device.Tests.Unix;

public sealed class SeqPacketMessageTests : IDisposable
{
    private readonly UnixTestSockets _sockets = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _sockets.Dispose();

    private static byte[] Pattern(int length, int seed)
    {
        byte[] bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    [Fact(Timeout = 10_000)]
    public async Task Reader_splits_big_messages_into_pieces_and_marks_each_message_end()
    {
        (Socket host, Socket device) = await _sockets.PairAsync(SocketType.Seqpacket);
        using (host)
        using (device)
        {
            UnixSocketIo.ConfigureForDataPath(device);
            int[] sizes = [1, 4096, 0, 10_000, 4095, 4097, 65_536];
            byte[][] messages = sizes.Select((size, i) => Pattern(size, i)).ToArray();
            foreach (byte[] message in messages)
            {
                await host.SendAsync(message, Ct);
            }

            using var reader = new SeqPacketMessageReader();
            byte[] rx = new byte[4096];
            var received = new List<byte[]>();
            var current = new List<byte>();
            while (received.Count < messages.Length)
            {
                UnixIoResult result = reader.Read(device, rx, out bool end);
                if (result.Status == UnixIoStatus.WouldBlock)
                {
                    Assert.True((await SocketWait.ReadableAsync(device, Ct)).IsOk);
                    continue;
                }

                Assert.True(result.IsOk, result.ToString());
                Assert.True(result.Bytes <= rx.Length);
                current.AddRange(rx.AsSpan(0, result.Bytes));
                if (end)
                {
                    received.Add([.. current]);
                    current.Clear();
                    Assert.Equal(0, reader.StagedBytes);
                }
                else
                {
                    Assert.Equal(rx.Length, result.Bytes);
                    Assert.True(reader.StagedBytes > 0);
                }
            }

            Assert.Equal(messages.Length, received.Count);
            for (int i = 0; i < messages.Length; i++)
            {
                Assert.Equal(messages[i], received[i]);
            }
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task Reader_reports_a_message_above_its_limit_and_leaves_it_in_the_socket()
    {
        (Socket host, Socket device) = await _sockets.PairAsync(SocketType.Seqpacket);
        using (host)
        using (device)
        {
            await host.SendAsync(new byte[2000], Ct);
            using var reader = new SeqPacketMessageReader(maxMessageSize: 1000);
            Assert.True((await SocketWait.ReadableAsync(device, Ct)).IsOk);
            UnixIoResult result = reader.Read(device, new byte[100], out bool end);
            Assert.Equal(UnixIoStatus.MessageTooLarge, result.Status);
            Assert.Equal(2000, result.MessageLength);
            Assert.False(end);
            Assert.Equal(2000, UnixSocketIo.PeekMessage(device).MessageLength);
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task Reader_passes_end_of_stream_and_an_empty_destination_reads_nothing()
    {
        (Socket host, Socket device) = await _sockets.PairAsync(SocketType.Seqpacket);
        using (device)
        {
            UnixSocketIo.ConfigureForDataPath(device);
            await host.SendAsync(new byte[10], Ct);
            host.Shutdown(SocketShutdown.Send);
            using var reader = new SeqPacketMessageReader();
            Assert.True((await SocketWait.ReadableAsync(device, Ct)).IsOk);
            UnixIoResult none = reader.Read(device, Span<byte>.Empty, out bool end);
            Assert.True(none.IsOk);
            Assert.Equal(0, none.Bytes);
            Assert.False(end);
            Assert.Equal(10, reader.Read(device, new byte[64], out end).Bytes);
            Assert.True(end);
            Assert.Equal(UnixIoStatus.EndOfStream, reader.Read(device, new byte[64], out end).Status);
            host.Dispose();
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task Writer_sends_pieces_as_one_message_at_EOM()
    {
        (Socket host, Socket device) = await _sockets.PairAsync(SocketType.Seqpacket);
        using (host)
        using (device)
        {
            using var writer = new SeqPacketMessageWriter();
            byte[] message = Pattern(10_000, 5);
            Assert.Equal(4096, writer.Write(device, message.AsSpan(0, 4096), false).Bytes);
            Assert.Equal(4096, writer.Write(device, message.AsSpan(4096, 4096), false).Bytes);
            Assert.Equal(8192, writer.StagedBytes);
            UnixIoResult last = writer.Write(device, message.AsSpan(8192), true);
            Assert.True(last.IsOk);
            Assert.Equal(10_000 - 8192, last.Bytes);
            Assert.Equal(10_000, last.MessageLength);
            Assert.Equal(0, writer.StagedBytes);

            Assert.True(writer.Write(device, "solo"u8, true).IsOk);
            Assert.True(writer.Write(device, ReadOnlySpan<byte>.Empty, true).IsOk);

            byte[] buffer = new byte[20_000];
            Assert.Equal(10_000, await host.ReceiveAsync(buffer, Ct));
            Assert.Equal(message, buffer.AsSpan(0, 10_000).ToArray());
            Assert.Equal(4, await host.ReceiveAsync(buffer, Ct));
            Assert.Equal(0, await host.ReceiveAsync(buffer, Ct));
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task Writer_would_block_takes_nothing_and_the_same_piece_succeeds_later()
    {
        (Socket host, Socket device) = await _sockets.PairAsync(SocketType.Seqpacket);
        using (host)
        using (device)
        {
            using var writer = new SeqPacketMessageWriter();
            byte[] piece = new byte[8192];
            int sentMessages = 0;
            UnixIoResult result;
            while ((result = writer.Write(device, piece, true)).IsOk)
            {
                sentMessages++;
                Assert.True(sentMessages < 100_000);
            }

            Assert.Equal(UnixIoStatus.WouldBlock, result.Status);
            Assert.Equal(0, result.Bytes);

            // A staged prefix survives a blocked final piece.
            Assert.True(writer.Write(device, new byte[100], false).IsOk);
            Assert.Equal(UnixIoStatus.WouldBlock, writer.Write(device, piece, true).Status);
            Assert.Equal(100, writer.StagedBytes);

            byte[] buffer = new byte[16_384];
            for (int i = 0; i < sentMessages; i++)
            {
                Assert.Equal(8192, await host.ReceiveAsync(buffer, Ct));
            }

            UnixIoResult retried = writer.Write(device, piece, true);
            Assert.True(retried.IsOk, retried.ToString());
            Assert.Equal(8292, retried.MessageLength);
            Assert.Equal(8292, await host.ReceiveAsync(buffer, Ct));
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task Writer_refuses_messages_above_its_limit()
    {
        (Socket host, Socket device) = await _sockets.PairAsync(SocketType.Seqpacket);
        using (host)
        using (device)
        {
            using var writer = new SeqPacketMessageWriter(maxMessageSize: 1000);
            Assert.True(writer.Write(device, new byte[600], false).IsOk);
            Assert.Equal(UnixIoStatus.MessageTooLarge, writer.Write(device, new byte[600], false).Status);
            Assert.Equal(UnixIoStatus.MessageTooLarge, writer.Write(device, new byte[600], true).Status);
            writer.Reset();
            Assert.Equal(0, writer.StagedBytes);
            Assert.True(writer.Write(device, new byte[1000], true).IsOk);
        }
    }

    [Fact(Timeout = 10_000)]
    public async Task Reader_and_writer_do_not_allocate_in_steady_state()
    {
        (Socket host, Socket device) = await _sockets.PairAsync(SocketType.Seqpacket);
        using (host)
        using (device)
        {
            UnixSocketIo.ConfigureForDataPath(host);
            using var writer = new SeqPacketMessageWriter();
            using var reader = new SeqPacketMessageReader();
            byte[] piece = new byte[3000];
            byte[] rx = new byte[4096];

            void RoundTrip()
            {
                writer.Write(device, piece, false);
                writer.Write(device, piece, true);
                bool end;
                do
                {
                    reader.Read(host, rx, out end);
                }
                while (!end);
            }

            RoundTrip();
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 500; i++)
            {
                RoundTrip();
            }

            Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
        }
    }
}
