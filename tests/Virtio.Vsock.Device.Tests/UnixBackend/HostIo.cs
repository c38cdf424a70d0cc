using System.Net.Sockets;
using Virtio.Vsock.Backends.Unix;
using Virtio.Vsock.Device.Tests.Unix;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.UnixBackend;

/// <summary>What the host and guest programs of the Unix backend tests do: echo loops, message I/O with deadlines.</summary>
internal static class HostIo
{
    /// <summary>Echoes until end of stream, then shuts down sending.</summary>
    public static async Task EchoAsync(Socket socket, CancellationToken token)
    {
        byte[] buffer = new byte[65536];
        int n;
        while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, token)) > 0)
        {
            await socket.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, token);
        }

        socket.Shutdown(SocketShutdown.Send);
    }

    /// <summary>Echoes until end of stream, then closes (SHUTDOWN both, RST exchange).</summary>
    public static async Task EchoAsync(GuestSocket socket, CancellationToken token)
    {
        byte[] buffer = new byte[65536];
        int n;
        while ((n = await socket.ReceiveAsync(buffer, token)) > 0)
        {
            await socket.SendAsync(buffer.AsMemory(0, n), token);
        }

        await socket.CloseAsync();
    }

    /// <summary>Receives one SOCK_SEQPACKET message (the socket prepared with <see cref="UnixSocketIo.ConfigureForDataPath"/>, so empty messages are seen).</summary>
    public static async Task<byte[]> ReceiveMessageAsync(Socket socket, CancellationToken token)
    {
        byte[] buffer = new byte[256 * 1024];
        while (true)
        {
            UnixIoResult ready = await SocketWait.ReadableAsync(socket, token);
            Assert.True(ready.IsOk, ready.ToString());
            UnixIoResult received = UnixSocketIo.ReceiveMessage(socket, buffer);
            if (received.Status == UnixIoStatus.WouldBlock)
            {
                continue;
            }

            Assert.True(received.IsOk, received.ToString());
            Assert.False(received.Truncated);
            return buffer.AsSpan(0, received.Bytes).ToArray();
        }
    }

    /// <summary>Sends one SOCK_SEQPACKET message, waiting while the peer's queue is full.</summary>
    public static async Task SendMessageAsync(Socket socket, byte[] message, CancellationToken token)
    {
        while (true)
        {
            UnixIoResult sent = UnixSocketIo.SendMessage(socket, message);
            if (sent.Status != UnixIoStatus.WouldBlock)
            {
                Assert.True(sent.IsOk, sent.ToString());
                return;
            }

            await Task.Delay(1, token);
        }
    }

    /// <summary>Reads one whole guest message (pieces up to EOM).</summary>
    public static async Task<byte[]> ReceiveMessageAsync(GuestSocket socket, CancellationToken token)
    {
        var message = new MemoryStream();
        byte[] buffer = new byte[65536];
        SeqPacketFlags end;
        do
        {
            (int n, end) = await socket.ReceiveMessageAsync(buffer, token);
            message.Write(buffer, 0, n);
            if (n == 0 && end == SeqPacketFlags.None)
            {
                throw new EndOfStreamException("The guest socket reached end of stream inside a message.");
            }
        }
        while (end == SeqPacketFlags.None);
        return message.ToArray();
    }
}
