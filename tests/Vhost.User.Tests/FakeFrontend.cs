using System.Buffers.Binary;
using System.Net.Sockets;

namespace Vhost.User.Tests;

/// <summary>
/// A vhost-user frontend written for tests: speaks the protocol over a real Unix socket, with real
/// SCM_RIGHTS descriptors, the way QEMU does. Every receive has a timeout, so no test can hang.
/// </summary>
internal sealed class FakeFrontend : IDisposable
{
    public static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(10);

    private readonly Socket _socket;

    private FakeFrontend(Socket socket)
    {
        _socket = socket;
        _socket.ReceiveTimeout = (int)ReplyTimeout.TotalMilliseconds;
        _socket.SendTimeout = (int)ReplyTimeout.TotalMilliseconds;
    }

    public static FakeFrontend Connect(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(path));
        return new FakeFrontend(socket);
    }

    public Socket Socket => _socket;

    /// <summary>Sends a raw message: header fields exactly as given.</summary>
    public void SendRaw(uint request, uint flags, uint size, ReadOnlySpan<byte> payload, params ReadOnlySpan<int> fds)
    {
        byte[] message = new byte[12 + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(message, request);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(8), size);
        payload.CopyTo(message.AsSpan(12));
        int errno = SocketChannel.SendWithFds((int)_socket.SafeHandle.DangerousGetHandle(), message, fds);
        Assert.Equal(0, errno);
    }

    public void Send(VhostUserRequest request, ReadOnlySpan<byte> payload, bool needReply = false, params ReadOnlySpan<int> fds) =>
        SendRaw((uint)request, needReply ? 0x9u : 0x1u, (uint)payload.Length, payload, fds);

    public Reply Receive()
    {
        byte[] header = ReceiveExact(12);
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8));
        Assert.True(size <= 4096, $"reply size {size}");
        byte[] payload = ReceiveExact((int)size);
        return new Reply(BinaryPrimitives.ReadUInt32LittleEndian(header), BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4)), payload);
    }

    /// <summary>Receives a reply to <paramref name="request"/> and checks its header.</summary>
    public Reply ReceiveReplyTo(VhostUserRequest request)
    {
        Reply reply = Receive();
        Assert.Equal((uint)request, reply.Request);
        Assert.Equal(0x5u, reply.Flags); // version 1 | REPLY
        return reply;
    }

    /// <summary>
    /// Sentinel for "no reply": sends GET_FEATURES (always answered) and asserts that the very next message is its
    /// reply and nothing else is pending. The backend handles one connection's messages in order, so a reply owed to
    /// anything sent earlier would have arrived first. No waiting on the clock.
    /// </summary>
    public void AssertNoReplyPending()
    {
        Send(VhostUserRequest.GetFeatures, []);
        Assert.Equal(8, ReceiveReplyTo(VhostUserRequest.GetFeatures).Payload.Length);
        Assert.False(HasData(TimeSpan.Zero), "a message arrived after the sentinel's reply");
    }

    /// <summary>Whether anything arrives within <paramref name="wait"/>.</summary>
    public bool HasData(TimeSpan wait) => _socket.Poll(wait, SelectMode.SelectRead) && _socket.Available > 0;

    /// <summary>Whether the backend closed the connection (end of stream) within <paramref name="wait"/>.</summary>
    public bool WaitClosed(TimeSpan wait)
    {
        if (!_socket.Poll(wait, SelectMode.SelectRead))
        {
            return false;
        }

        byte[] probe = new byte[1];
        try
        {
            return _socket.Receive(probe) == 0;
        }
        catch (SocketException)
        {
            return true;
        }
    }

    public ulong GetU64(VhostUserRequest request)
    {
        Send(request, []);
        return ReceiveReplyTo(request).U64;
    }

    public void SetU64(VhostUserRequest request, ulong value, params ReadOnlySpan<int> fds) =>
        Send(request, U64(value), false, fds);

    /// <summary>Sends with NEED_REPLY and returns the u64 status (REPLY_ACK must be negotiated).</summary>
    public ulong Ack(VhostUserRequest request, ReadOnlySpan<byte> payload, params ReadOnlySpan<int> fds)
    {
        Send(request, payload, true, fds);
        return ReceiveReplyTo(request).U64;
    }

    public static byte[] U64(ulong value)
    {
        byte[] bytes = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        return bytes;
    }

    public static byte[] State(uint index, uint num)
    {
        byte[] bytes = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, index);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), num);
        return bytes;
    }

    public static byte[] Address(uint index, ulong descriptors, ulong used, ulong available, uint flags = 0)
    {
        byte[] bytes = new byte[40];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, index);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(8), descriptors);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(16), used);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(24), available);
        return bytes;
    }

    public static byte[] MemTable(params ReadOnlySpan<RegionDescriptor> regions)
    {
        byte[] bytes = new byte[8 + (32 * regions.Length)];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)regions.Length);
        for (int i = 0; i < regions.Length; i++)
        {
            WriteRegion(bytes.AsSpan(8 + (32 * i)), regions[i]);
        }

        return bytes;
    }

    public static byte[] SingleRegion(RegionDescriptor region)
    {
        byte[] bytes = new byte[40];
        WriteRegion(bytes.AsSpan(8), region);
        return bytes;
    }

    public static byte[] ConfigRequest(uint offset, uint size, uint flags = 0, ReadOnlySpan<byte> data = default)
    {
        byte[] bytes = new byte[12 + size];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, offset);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), size);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), flags);
        data.CopyTo(bytes.AsSpan(12));
        return bytes;
    }

    public void Dispose() => _socket.Dispose();

    private static void WriteRegion(Span<byte> target, RegionDescriptor region)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(target, region.GuestAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(target[8..], region.Size);
        BinaryPrimitives.WriteUInt64LittleEndian(target[16..], region.UserAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(target[24..], region.MmapOffset);
    }

    private byte[] ReceiveExact(int count)
    {
        byte[] buffer = new byte[count];
        int offset = 0;
        while (offset < count)
        {
            int received = _socket.Receive(buffer, offset, count - offset, SocketFlags.None);
            if (received == 0)
            {
                throw new IOException("The backend closed the connection.");
            }

            offset += received;
        }

        return buffer;
    }
}
