namespace VsockSoak;

/// <summary>How a receive loop ended.</summary>
internal enum StreamEnd
{
    /// <summary>End of stream (the peer half-closed or closed).</summary>
    EndOfStream,

    /// <summary>The connection was reset (or the socket closed under the reader).</summary>
    Reset,

    /// <summary>The reader stopped on purpose after the bytes it wanted.</summary>
    Stopped,

    /// <summary>The connection's deadline (or the reconnect grace) ran out.</summary>
    Canceled,
}

/// <summary>What one direction of a connection delivered.</summary>
/// <param name="Received">Bytes received (all checked).</param>
/// <param name="BadOffset">The stream offset of the first wrong byte, or -1.</param>
/// <param name="End">How the receive loop ended.</param>
internal readonly record struct ReceiveResult(long Received, long BadOffset, StreamEnd End);
