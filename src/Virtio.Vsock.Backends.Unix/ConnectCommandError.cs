namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// Why a host's <c>CONNECT &lt;port&gt;\n</c> line was rejected by <see cref="ConnectCommandParser"/>.
/// Owns nothing; a value for counters and diagnostics that must never be turned into an exception
/// on the handshake path.
/// </summary>
internal enum ConnectCommandError
{
    /// <summary>No error (the line is incomplete or complete).</summary>
    None = 0,

    /// <summary>
    /// The line does not start with the word <c>CONNECT</c> (ASCII case-insensitive) followed by a
    /// space or tab: other words, leading whitespace, an empty line, <c>CONNECT5</c>.
    /// </summary>
    NotConnectCommand = 1,

    /// <summary>The line ended (<c>\n</c> or <c>\r</c>) before any port digit: <c>CONNECT\n</c>, <c>CONNECT \r\n</c>.</summary>
    MissingPort = 2,

    /// <summary>The port starts with or contains a byte that is not a decimal digit (signs included).</summary>
    InvalidPort = 3,

    /// <summary>The port's decimal value does not fit in 32 bits (above 4294967295).</summary>
    PortOverflow = 4,

    /// <summary>
    /// Something other than spaces, tabs, or a single <c>\r</c> right before <c>\n</c> follows the
    /// port: an extra token, a bare <c>\r</c>, a control byte.
    /// </summary>
    UnexpectedCharacter = 5,

    /// <summary>
    /// <see cref="ConnectCommandParser.MaxLineLength"/> bytes arrived without the <c>\n</c> that ends
    /// the line.
    /// </summary>
    TooLong = 6,

    /// <summary>The peer closed (end of stream) before the <c>\n</c> that ends the line.</summary>
    EndOfStream = 7,
}
