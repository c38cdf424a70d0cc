namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// Where a <see cref="ConnectCommandParser"/> stands after the bytes fed so far. Owns nothing; a
/// plain outcome tag that must never carry data (see <see cref="ConnectParseResult"/>).
/// </summary>
internal enum ConnectParseStatus
{
    /// <summary>The line is a valid prefix so far; feed more bytes.</summary>
    NeedMore = 0,

    /// <summary>A full <c>CONNECT &lt;port&gt;\n</c> line was read; the port is known.</summary>
    Complete = 1,

    /// <summary>The bytes can never form a valid line; close the connection.</summary>
    Invalid = 2,
}
