namespace Vhost.User;

/// <summary>How a read or write on a <see cref="SocketChannel"/> ended.</summary>
internal enum ChannelStatus
{
    /// <summary>All bytes were transferred.</summary>
    Ok,

    /// <summary>The peer closed the connection (end of stream).</summary>
    Closed,

    /// <summary>The channel was asked to stop.</summary>
    Stopped,

    /// <summary>The socket failed; see the errno.</summary>
    Failed,
}
