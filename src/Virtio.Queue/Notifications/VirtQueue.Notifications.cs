using Virtio.Memory;

namespace Virtio.Queue;

/// <summary>
/// Notification suppression of <see cref="VirtQueue"/>, both directions: whether the driver must be told about used
/// elements (EVENT_IDX <c>used_event</c>, or the NO_INTERRUPT flag), and asking the driver for kicks or not
/// (<c>avail_event</c>, or the NO_NOTIFY flag). The notify decision and the re-check after asking for kicks each
/// stand behind a full fence; nothing here allocates or throws.
/// </summary>
public sealed partial class VirtQueue
{
    /// <summary>
    /// Reads the driver's <c>used_event</c> (EVENT_IDX): the used index at which it next wants a used-buffer
    /// notification. For watching the driver (diagnostics, a device's lost-notification watch); <see cref="NeedsNotification"/>
    /// reads it itself.
    /// </summary>
    /// <param name="memory">The guest memory.</param>
    /// <param name="usedEvent">The value, or 0 when there is none.</param>
    /// <returns>Whether there is one: EVENT_IDX negotiated and the ring readable.</returns>
    public bool TryReadUsedEvent(GuestMemory memory, out ushort usedEvent)
    {
        usedEvent = 0;
        return _eventIdx && EnsureBound(memory) == QueueError.None
            && _avail.ReadU16(memory, _usedEventOffset, out usedEvent) == MemoryError.None;
    }

    /// <summary>
    /// Whether the driver must be notified about the used elements published since the last call.
    /// Starts with a full fence. With EVENT_IDX: the <c>used_event</c> formula on the published used index
    /// now and at the previous call (the first call after a reset answers yes); without it: unless the
    /// driver set <see cref="AvailRingFlags.NoInterrupt"/>.
    /// </summary>
    /// <param name="memory">The guest memory.</param>
    /// <returns>Whether to notify. When the ring cannot be read, <see langword="true"/> (a spurious notification is harmless).</returns>
    public bool NeedsNotification(GuestMemory memory)
    {
        Interlocked.MemoryBarrier();
        if (EnsureBound(memory) != QueueError.None)
        {
            return true;
        }

        if (_eventIdx)
        {
            ushort newIndex = _publishedUsed;
            ushort oldIndex = _signalledUsed;
            bool valid = _signalledValid;
            _signalledUsed = newIndex;
            _signalledValid = true;
            if (!valid)
            {
                return true;
            }

            if (_avail.ReadU16(memory, _usedEventOffset, out ushort usedEvent) != MemoryError.None)
            {
                return true;
            }

            return EventIndex.NeedsEvent(usedEvent, newIndex, oldIndex);
        }

        if (_avail.ReadU16(memory, SplitRing.FlagsOffset, out ushort flags) != MemoryError.None)
        {
            return true;
        }

        return (flags & (ushort)AvailRingFlags.NoInterrupt) == 0;
    }

    /// <summary>
    /// Asks the driver for available-buffer notifications, then re-checks the ring: the driver may have added
    /// buffers before it saw the request. With EVENT_IDX writes <c>avail_event</c> = <see cref="NextAvail"/>;
    /// without it clears <see cref="UsedRingFlags.NoNotify"/>. Then a full fence and a re-read of <c>avail.idx</c>.
    /// </summary>
    /// <param name="memory">The guest memory.</param>
    /// <param name="hasMore">Whether chains are available now (pop them instead of waiting for a kick).</param>
    /// <returns>The error, or <see cref="QueueError.None"/>.</returns>
    public QueueError EnableNotification(GuestMemory memory, out bool hasMore)
    {
        hasMore = false;
        QueueError error = EnsureBound(memory);
        if (error != QueueError.None)
        {
            return error;
        }

        MemoryError written = _eventIdx
            ? _used.StoreU16Release(memory, _availEventOffset, _nextAvail)
            : UpdateUsedFlags(memory, set: false);
        if (written != MemoryError.None)
        {
            return QueueError.RingOutsideMemory;
        }

        Interlocked.MemoryBarrier();
        if (_avail.LoadU16Acquire(memory, SplitRing.IndexOffset, out ushort availIndex) != MemoryError.None)
        {
            return QueueError.RingOutsideMemory;
        }

        hasMore = availIndex != _nextAvail;
        return QueueError.None;
    }

    /// <summary>
    /// Asks the driver not to send available-buffer notifications: sets <see cref="UsedRingFlags.NoNotify"/>.
    /// With EVENT_IDX nothing is written: the driver notifies only when it passes <c>avail_event</c>, which the
    /// device simply stops advancing.
    /// </summary>
    /// <param name="memory">The guest memory.</param>
    /// <returns>The error, or <see cref="QueueError.None"/>.</returns>
    public QueueError DisableNotification(GuestMemory memory)
    {
        QueueError error = EnsureBound(memory);
        if (error != QueueError.None || _eventIdx)
        {
            return error;
        }

        return UpdateUsedFlags(memory, set: true) == MemoryError.None ? QueueError.None : QueueError.RingOutsideMemory;
    }

    private MemoryError UpdateUsedFlags(GuestMemory memory, bool set)
    {
        MemoryError error = _used.ReadU16(memory, SplitRing.FlagsOffset, out ushort flags);
        if (error != MemoryError.None)
        {
            return error;
        }

        flags = set ? (ushort)(flags | (ushort)UsedRingFlags.NoNotify) : (ushort)(flags & ~(ushort)UsedRingFlags.NoNotify);
        return _used.StoreU16Release(memory, SplitRing.FlagsOffset, flags);
    }
}
