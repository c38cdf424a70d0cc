namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// The outcome of feeding bytes to a <see cref="ConnectCommandParser"/>: a status, the port once
/// complete, how many of the bytes just fed belong to the command line, and the error once invalid.
/// Owns no memory; must never refer to the fed bytes themselves.
/// </summary>
internal readonly struct ConnectParseResult : IEquatable<ConnectParseResult>
{
    /// <summary>Creates a result. Normally only <see cref="ConnectCommandParser"/> makes these.</summary>
    /// <param name="status">The parser's status.</param>
    /// <param name="port">The guest port (only meaningful when <paramref name="status"/> is complete).</param>
    /// <param name="bytesConsumed">Bytes of the fed span that belong to the command line.</param>
    /// <param name="error">The reason when <paramref name="status"/> is invalid.</param>
    public ConnectParseResult(ConnectParseStatus status, uint port, int bytesConsumed, ConnectCommandError error)
    {
        Status = status;
        Port = port;
        BytesConsumed = bytesConsumed;
        Error = error;
    }

    /// <summary>Whether the line needs more bytes, is complete, or can never be valid.</summary>
    public ConnectParseStatus Status { get; }

    /// <summary>The guest port named by the line; 0 unless <see cref="Status"/> is complete.</summary>
    public uint Port { get; }

    /// <summary>
    /// How many bytes of the span passed to this <see cref="ConnectCommandParser.Feed"/> call were
    /// part of the command line. When complete, bytes from this index on are stream data that
    /// followed the <c>\n</c> and must be delivered to the guest. 0 for a call made after the parser
    /// already finished.
    /// </summary>
    public int BytesConsumed { get; }

    /// <summary>Why the line is invalid; <see cref="ConnectCommandError.None"/> otherwise.</summary>
    public ConnectCommandError Error { get; }

    /// <summary>True when <see cref="Status"/> is <see cref="ConnectParseStatus.Complete"/>.</summary>
    public bool IsComplete => Status == ConnectParseStatus.Complete;

    /// <summary>True when <see cref="Status"/> is <see cref="ConnectParseStatus.Invalid"/>.</summary>
    public bool IsInvalid => Status == ConnectParseStatus.Invalid;

    /// <summary>Compares two results field by field.</summary>
    /// <param name="left">The first result.</param>
    /// <param name="right">The second result.</param>
    /// <returns>True if all fields are equal.</returns>
    public static bool operator ==(ConnectParseResult left, ConnectParseResult right) => left.Equals(right);

    /// <summary>Compares two results field by field.</summary>
    /// <param name="left">The first result.</param>
    /// <param name="right">The second result.</param>
    /// <returns>True if any field differs.</returns>
    public static bool operator !=(ConnectParseResult left, ConnectParseResult right) => !left.Equals(right);

    /// <inheritdoc/>
    public bool Equals(ConnectParseResult other) =>
        Status == other.Status && Port == other.Port && BytesConsumed == other.BytesConsumed && Error == other.Error;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is ConnectParseResult other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Status, Port, BytesConsumed, Error);

    /// <inheritdoc/>
    public override string ToString() => Status switch
    {
        ConnectParseStatus.Complete => $"Complete(port {Port}, consumed {BytesConsumed})",
        ConnectParseStatus.Invalid => $"Invalid({Error}, consumed {BytesConsumed})",
        _ => $"NeedMore(consumed {BytesConsumed})",
    };
}
