namespace Vhost.User;

/// <summary>How a request is answered.</summary>
internal enum ReplyKind
{
    /// <summary>No reply of its own; a u64 status when REPLY_ACK is negotiated and NEED_REPLY is set.</summary>
    None,

    /// <summary>A mandatory reply carrying data; an error is a reply without payload.</summary>
    Data,

    /// <summary>A mandatory u64 status reply (0 = success).</summary>
    Status,
}
