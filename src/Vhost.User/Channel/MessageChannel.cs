using System.Buffers.Binary;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Vhost.User;

/// <summary>
/// The framing of vhost-user messages on one connected socket: reads a 12-byte header (request, flags, size), the
/// payload and the SCM_RIGHTS descriptors that came with them into one reusable buffer, checks the header
/// (version, flags, size limit), and writes replies. Owns the socket, the buffer and the descriptors of the message
/// in hand (closed after it is handled unless a handler took them). Must never interpret a payload (the dispatcher
/// and its handlers do) nor read past <see cref="VhostUserConnection.MaxPayloadSize"/>: a larger size field ends
/// the connection, as framing can no longer be trusted.
/// </summary>
internal sealed class MessageChannel : IDisposable
{
    /// <summary>The size of the message header.</summary>
    internal const int HeaderSize = 12;

    /// <summary>Descriptors accepted with one message; more are closed and the message refused.</summary>
    internal const int MaxFdsPerMessage = 8;

    /// <summary>The version bits of the flags.</summary>
    internal const uint VersionMask = 0x3;

    /// <summary>The only protocol version.</summary>
    internal const uint Version = 0x1;

    /// <summary>The flag of a reply.</summary>
    internal const uint ReplyFlag = 0x4;

    /// <summary>The flag of a request that wants a REPLY_ACK.</summary>
    internal const uint NeedReplyFlag = 0x8;

    /// <summary>The largest reply payload: GET_CONFIG's 12-byte header and 256 bytes of configuration.</summary>
    internal const int MaxReplyPayload = 12 + DeviceConfigRequests.MaxConfigSize;

    private readonly Socket _socket;
    private readonly SocketChannel _channel;
    private readonly ILogger _logger;
    private readonly byte[] _buffer = new byte[HeaderSize + VhostUserConnection.MaxPayloadSize];

    /// <summary>Wraps a connected socket, which the channel owns from now on.</summary>
    /// <param name="socket">The connected socket.</param>
    /// <param name="logger">Where refused headers go.</param>
    /// <exception cref="IOException">No eventfd could be created.</exception>
    internal MessageChannel(Socket socket, ILogger logger)
    {
        _socket = socket;
        _logger = logger;
        _channel = new SocketChannel(socket.SafeHandle);
    }

    /// <summary>The descriptors of the message in hand; a handler that keeps one takes it with <see cref="TakeFd"/>.</summary>
    internal List<SafeFileDescriptor?> Fds { get; } = new(MaxFdsPerMessage);

    /// <summary>Why the connection must end (set by a read or write that failed), or null while it goes on.</summary>
    internal string? CloseReason { get; private set; }

    /// <summary>Ends the connection: the current and every later read or write stops. Thread-safe.</summary>
    internal void RequestStop() => _channel.RequestStop();

    /// <summary>Marks the connection as ending for <paramref name="reason"/>.</summary>
    /// <param name="reason">The reason logged at disconnect.</param>
    internal void Close(string reason) => CloseReason ??= reason;

    /// <summary>
    /// Reads one message. Returns false when there is nothing to dispatch: the connection ends
    /// (<see cref="CloseReason"/> set) or the header was refused (logged; the next message follows).
    /// </summary>
    /// <param name="request">The request code.</param>
    /// <param name="needReply">Whether the frontend asked for a REPLY_ACK.</param>
    /// <param name="payload">The payload, valid until the next read.</param>
    /// <param name="fdsDropped">Whether descriptors beyond <see cref="MaxFdsPerMessage"/> came (and were closed).</param>
    /// <returns>True when a well-framed message is in hand.</returns>
    internal bool TryReceive(out uint request, out bool needReply, out Span<byte> payload, out bool fdsDropped)
    {
        request = 0;
        needReply = false;
        payload = default;
        fdsDropped = false;
        Fds.Clear();
        Span<byte> header = _buffer.AsSpan(0, HeaderSize);
        ChannelStatus status = _channel.ReceiveExact(header, Fds, MaxFdsPerMessage, ref fdsDropped);
        if (status != ChannelStatus.Ok)
        {
            Close(Describe(status, "waiting for a message"));
            return false;
        }

        request = BinaryPrimitives.ReadUInt32LittleEndian(header);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
        if (size > VhostUserConnection.MaxPayloadSize)
        {
            Log.HeaderRefused(_logger, request, flags, size, $"payload size exceeds the {VhostUserConnection.MaxPayloadSize}-byte limit; closing the connection");
            Close("oversized message");
            return false;
        }

        payload = _buffer.AsSpan(HeaderSize, (int)size);
        status = _channel.ReceiveExact(payload, Fds, MaxFdsPerMessage, ref fdsDropped);
        if (status != ChannelStatus.Ok)
        {
            Close(Describe(status, "reading a message payload"));
            return false;
        }

        if ((flags & VersionMask) != Version)
        {
            Log.HeaderRefused(_logger, request, flags, size, $"protocol version {flags & VersionMask}, expected {Version}");
            return false;
        }

        if ((flags & ~(VersionMask | NeedReplyFlag)) != 0)
        {
            Log.HeaderRefused(_logger, request, flags, size, "reply flag or reserved flag bits set in a request");
            return false;
        }

        needReply = (flags & NeedReplyFlag) != 0;
        return true;
    }

    /// <summary>Takes ownership of descriptor <paramref name="index"/> of the message in hand.</summary>
    /// <param name="index">The position among the message's descriptors.</param>
    /// <returns>The descriptor, which the caller now owns.</returns>
    internal SafeFileDescriptor TakeFd(int index)
    {
        SafeFileDescriptor fd = Fds[index]!;
        Fds[index] = null;
        return fd;
    }

    /// <summary>Closes the descriptors of the message in hand that no handler took.</summary>
    internal void CloseUnusedFds()
    {
        foreach (SafeFileDescriptor? fd in Fds)
        {
            fd?.Dispose();
        }

        Fds.Clear();
    }

    /// <summary>Replies with one little-endian u64.</summary>
    /// <param name="request">The request answered.</param>
    /// <param name="value">The value.</param>
    /// <returns>False when the write failed (the connection ends).</returns>
    internal bool ReplyU64(VhostUserRequest request, ulong value)
    {
        Span<byte> payload = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(payload, value);
        return SendReply(request, payload);
    }

    /// <summary>Replies with <paramref name="payload"/> (at most <see cref="MaxReplyPayload"/> bytes).</summary>
    /// <param name="request">The request answered.</param>
    /// <param name="payload">The reply payload.</param>
    /// <returns>False when the write failed (the connection ends).</returns>
    internal bool SendReply(VhostUserRequest request, ReadOnlySpan<byte> payload)
    {
        Span<byte> message = stackalloc byte[HeaderSize + MaxReplyPayload];
        message = message[..(HeaderSize + payload.Length)];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)request);
        BinaryPrimitives.WriteUInt32LittleEndian(message[4..], Version | ReplyFlag);
        BinaryPrimitives.WriteUInt32LittleEndian(message[8..], (uint)payload.Length);
        payload.CopyTo(message[HeaderSize..]);
        ChannelStatus status = _channel.SendAll(message);
        if (status != ChannelStatus.Ok)
        {
            Close(Describe(status, "sending a reply"));
            return false;
        }

        return true;
    }

    /// <summary>Closes the unused descriptors, the stop eventfd and the socket.</summary>
    public void Dispose()
    {
        CloseUnusedFds();
        _channel.Dispose();
        _socket.Dispose();
    }

    private string Describe(ChannelStatus status, string activity) => status switch
    {
        ChannelStatus.Closed => activity == "waiting for a message" ? "frontend closed the connection" : $"frontend closed the connection while {activity}",
        ChannelStatus.Stopped => "stopped by the host",
        _ => $"socket error (errno {_channel.LastErrno}) while {activity}",
    };
}
