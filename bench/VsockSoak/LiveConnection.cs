namespace VsockSoak;

/// <summary>
/// A connection in progress, as the reconnect routine sees it: whether a frontend reconnect happened
/// during it, and the grace timer that ends it if the reconnect left one side waiting forever (as a guest
/// application would time out). Owns its grace token source.
/// </summary>
internal sealed class LiveConnection : IDisposable
{
    private int _overlapped;

    /// <summary>Cancelled when a reconnect's grace period ran out for this connection.</summary>
    public CancellationTokenSource Grace { get; } = new();

    /// <summary>Whether a frontend reconnect happened while the connection was alive.</summary>
    public bool Overlapped => Volatile.Read(ref _overlapped) != 0;

    /// <summary>Marks the connection as hit by a reconnect and starts its grace period.</summary>
    public void OnReconnect(TimeSpan grace)
    {
        Volatile.Write(ref _overlapped, 1);
        try
        {
            Grace.CancelAfter(grace);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <inheritdoc/>
    public void Dispose() => Grace.Dispose();
}
