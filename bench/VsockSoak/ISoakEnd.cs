namespace VsockSoak;

/// <summary>
/// One end of a soak connection (the guest's simulated socket or the host program's Unix socket), so a
/// scenario is written once for both directions. Implementations own their socket; they must never
/// swallow data errors (a reset surfaces as an exception from send or receive).
/// </summary>
internal interface ISoakEnd : IDisposable
{
    /// <summary>Sends all of <paramref name="data"/>.</summary>
    Task SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>Receives into <paramref name="buffer"/>; 0 at end of stream; throws on reset.</summary>
    Task<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken);

    /// <summary>Half-close: no more sending (the peer reads end of stream after the data).</summary>
    void ShutdownSend();

    /// <summary>Orderly close (the guest: SHUTDOWN then wait for RST; the host: close the socket).</summary>
    Task CloseAsync();

    /// <summary>Abortive close (the guest: RST; the host: close the socket at once).</summary>
    void Abort();
}
