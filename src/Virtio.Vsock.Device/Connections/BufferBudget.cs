namespace Virtio.Vsock.Device;

/// <summary>
/// The bytes one device may hold for its guest at once: the buffers of guest-to-host data its host
/// endpoints have not taken yet, and the payload copies its guest queued for sibling guests.
/// </summary>
/// <remarks>
/// <para>Each connection's buffer is bounded by the <c>buf_alloc</c> the device advertises, and each sibling
/// route by its own limit, but a guest opening the connection limit's worth of connections (or a group of
/// many siblings) multiplies those bounds. The budget caps their sum: a reservation that would pass
/// <see cref="Limit"/> fails, and the connection asking for it is reset.</para>
/// <para><b>Owns:</b> one counter. <b>Thread-safe:</b> sibling payloads are released by the receiving device's
/// loop, so the counter is updated with interlocked operations. <b>Must never:</b> go negative (every
/// release matches a reservation) or block.</para>
/// </remarks>
internal sealed class BufferBudget
{
    private long _used;

    /// <summary>Creates a budget.</summary>
    /// <param name="limit">The most bytes held at once.</param>
    public BufferBudget(long limit) => Limit = limit;

    /// <summary>The most bytes held at once.</summary>
    public long Limit { get; }

    /// <summary>The bytes held now.</summary>
    public long Used => Volatile.Read(ref _used);

    /// <summary>Reserves <paramref name="bytes"/>, unless that would pass the limit.</summary>
    /// <param name="bytes">The bytes to hold (0 or more).</param>
    /// <returns>Whether they were reserved.</returns>
    public bool TryReserve(long bytes)
    {
        if (Interlocked.Add(ref _used, bytes) > Limit)
        {
            Interlocked.Add(ref _used, -bytes);
            return false;
        }

        return true;
    }

    /// <summary>Returns bytes reserved earlier.</summary>
    /// <param name="bytes">The bytes no longer held.</param>
    public void Release(long bytes) => Interlocked.Add(ref _used, -bytes);
}
