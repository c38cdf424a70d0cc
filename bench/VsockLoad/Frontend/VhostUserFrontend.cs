using System.Buffers.Binary;
using VirtioVsock.Fuzz.Vhost;

namespace VsockLoad.Frontend;

/// <summary>
/// The QEMU side of a vhost-user connection to a vsock backend: typed requests and replies over the shared
/// <see cref="FrontendSocket"/>. Owns the socket. Never used on the data path (set-up only); every reply
/// wait is bounded by <see cref="ReplyTimeoutMs"/>.
/// </summary>
internal sealed class VhostUserFrontend : IDisposable
{
    /// <summary>How long a reply may take before the backend is declared stuck.</summary>
    public const int ReplyTimeoutMs = 10_000;

    private const uint VersionFlags = 0x1;
    private const uint ReplyFlag = 0x4;
    private const uint NeedReplyFlag = 0x8;

    private readonly FrontendSocket _socket;

    private VhostUserFrontend(FrontendSocket socket)
    {
        _socket = socket;
    }

    /// <summary>Whether REPLY_ACK was negotiated (every set request then carries NEED_REPLY and is checked).</summary>
    public bool ReplyAck { get; set; }

    /// <summary>Connects to <paramref name="path"/>, retrying while the backend is not listening yet, until <paramref name="timeout"/>.</summary>
    /// <param name="path">The vhost-user socket.</param>
    /// <param name="timeout">How long the backend may take to start listening.</param>
    /// <returns>The connected frontend.</returns>
    public static VhostUserFrontend Connect(string path, TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            try
            {
                return new VhostUserFrontend(FrontendSocket.Connect(path));
            }
            catch (IOException) when (Environment.TickCount64 < deadline)
            {
                Thread.Sleep(20); // start-up poll: the backend creates its socket when it is ready
            }
        }
    }

    /// <summary>Sends a request whose reply is a u64 and returns it.</summary>
    /// <param name="request">The request code.</param>
    /// <returns>The value.</returns>
    public ulong GetU64(VhostRequest request)
    {
        Send(request, [], [], needReply: false);
        byte[] reply = ReceiveReply(request);
        return reply.Length >= 8 ? BinaryPrimitives.ReadUInt64LittleEndian(reply) : throw new IOException($"{request}: reply of {reply.Length} bytes");
    }

    /// <summary>Sends a set request (with NEED_REPLY when REPLY_ACK is on, and checks the status).</summary>
    /// <param name="request">The request code.</param>
    /// <param name="payload">The payload.</param>
    /// <param name="fds">Descriptors to pass.</param>
    public void Set(VhostRequest request, ReadOnlySpan<byte> payload, params ReadOnlySpan<int> fds)
    {
        Send(request, payload, fds, ReplyAck);
        if (ReplyAck)
        {
            byte[] reply = ReceiveReply(request);
            ulong status = reply.Length >= 8 ? BinaryPrimitives.ReadUInt64LittleEndian(reply) : ulong.MaxValue;
            if (status != 0)
            {
                throw new IOException($"{request} refused by the backend (status {status}).");
            }
        }
    }

    /// <summary>Sets a u64-payload request.</summary>
    /// <param name="request">The request code.</param>
    /// <param name="value">The value.</param>
    /// <param name="fds">Descriptors to pass.</param>
    public void SetU64(VhostRequest request, ulong value, params ReadOnlySpan<int> fds)
    {
        Span<byte> payload = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(payload, value);
        Set(request, payload, fds);
    }

    /// <summary>Sets a vring-state request (<c>{u32 index; u32 num}</c>).</summary>
    /// <param name="request">The request code.</param>
    /// <param name="index">The queue index.</param>
    /// <param name="num">The value.</param>
    public void SetState(VhostRequest request, uint index, uint num)
    {
        Span<byte> payload = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, index);
        BinaryPrimitives.WriteUInt32LittleEndian(payload[4..], num);
        Set(request, payload);
    }

    /// <summary>Reads the vsock config (GET_CONFIG, 8 bytes at offset 0) and returns guest_cid.</summary>
    /// <returns>The guest CID.</returns>
    public ulong GetGuestCid()
    {
        Span<byte> payload = stackalloc byte[12 + 8];
        payload.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(payload[4..], 8);
        Send(VhostRequest.GetConfig, payload, [], needReply: false);
        byte[] reply = ReceiveReply(VhostRequest.GetConfig);
        return reply.Length >= 20 ? BinaryPrimitives.ReadUInt64LittleEndian(reply.AsSpan(12)) : throw new IOException($"GET_CONFIG reply of {reply.Length} bytes");
    }

    /// <inheritdoc/>
    public void Dispose() => _socket.Dispose();

    private void Send(VhostRequest request, ReadOnlySpan<byte> payload, ReadOnlySpan<int> fds, bool needReply)
    {
        byte[] message = new byte[12 + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)request);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(4), VersionFlags | (needReply ? NeedReplyFlag : 0));
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(8), (uint)payload.Length);
        payload.CopyTo(message.AsSpan(12));
        if (!_socket.Send(message, fds))
        {
            throw new IOException($"{request}: the backend closed the vhost-user socket.");
        }
    }

    private byte[] ReceiveReply(VhostRequest request)
    {
        byte[] header = ReceiveExact(12, request);
        uint code = BinaryPrimitives.ReadUInt32LittleEndian(header);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4));
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8));
        if (code != (uint)request || (flags & ReplyFlag) == 0 || (flags & 0x3) != 1 || size > 4096)
        {
            throw new IOException($"{request}: bad reply header (request {code}, flags 0x{flags:x}, size {size}).");
        }

        return ReceiveExact((int)size, request);
    }

    private byte[] ReceiveExact(int count, VhostRequest request)
    {
        byte[] buffer = new byte[count];
        int offset = 0;
        while (offset < count)
        {
            int read = _socket.Receive(buffer.AsSpan(offset), ReplyTimeoutMs);
            if (read <= 0)
            {
                throw new IOException($"{request}: no reply from the backend ({(read == 0 ? "closed" : "timeout")}).");
            }

            offset += read;
        }

        return buffer;
    }
}
