namespace Virtio.Vsock.Device;

/// <summary>
/// Timers of one device loop: items with deadlines, taken in deadline order once due. Cancelling a
/// timer is lazy (the owner changes its deadline and the old entry becomes stale); stale entries are
/// skipped when they come due and swept out whenever they outnumber the live ones, so a guest that
/// opens and drops connections fast cannot keep dead connections reachable from timer entries.
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> the priority queue of (item, deadline) entries. <b>Must never:</b> hold more than
/// twice the live timers plus a small constant (the sweep is amortised O(1) per timer added), or run on
/// any thread but its device loop.</para>
/// </remarks>
/// <typeparam name="T">The timed item.</typeparam>
internal sealed class DeadlineQueue<T>
    where T : class
{
    private const int Slack = 64;

    private readonly PriorityQueue<T, long> _queue = new();
    private readonly List<(T Item, long Deadline)> _scratch = [];
    private readonly Func<T, long, bool> _isLive;

    /// <summary>Creates an empty queue.</summary>
    /// <param name="isLive">Whether an entry still counts: the item is alive and its current deadline is the entry's.</param>
    public DeadlineQueue(Func<T, long, bool> isLive) => _isLive = isLive;

    /// <summary>Entries held, stale ones included.</summary>
    public int Count => _queue.Count;

    /// <summary>The earliest deadline held (possibly stale: waking early is harmless), or <see cref="long.MaxValue"/>.</summary>
    public long NextDeadline => _queue.TryPeek(out _, out long deadline) ? deadline : long.MaxValue;

    /// <summary>Adds a timer.</summary>
    /// <param name="item">The item.</param>
    /// <param name="deadline">Its deadline.</param>
    /// <param name="liveItems">How many items can have a live timer now (each has at most one): sweeps when stale entries may outnumber them.</param>
    public void Add(T item, long deadline, int liveItems)
    {
        _queue.Enqueue(item, deadline);
        if (_queue.Count > (2 * liveItems) + Slack)
        {
            Sweep();
        }
    }

    /// <summary>Takes the next due, live entry.</summary>
    /// <param name="now">The current timestamp.</param>
    /// <param name="item">The item whose timer fired.</param>
    /// <returns>Whether one was due.</returns>
    public bool TryTakeDue(long now, out T item)
    {
        while (_queue.TryPeek(out T? head, out long deadline) && deadline <= now)
        {
            _queue.Dequeue();
            if (_isLive(head, deadline))
            {
                item = head;
                return true;
            }
        }

        item = null!;
        return false;
    }

    /// <summary>Drops every entry.</summary>
    public void Clear() => _queue.Clear();

    private void Sweep()
    {
        foreach ((T item, long deadline) in _queue.UnorderedItems)
        {
            if (_isLive(item, deadline))
            {
                _scratch.Add((item, deadline));
            }
        }

        _queue.Clear();
        _queue.EnqueueRange(_scratch);
        _scratch.Clear();
    }
}
