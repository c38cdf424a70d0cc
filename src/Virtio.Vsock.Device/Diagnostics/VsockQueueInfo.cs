namespace Virtio.Vsock.Device;

/// <summary>
/// One virtqueue's indices and notification counts at one instant, as the device sees them (part of
/// <see cref="VsockDeviceSnapshot"/>). With them a stalled guest can be told apart from a stalled device: a
/// queue whose driver waits for an interrupt at <see cref="UsedEvent"/> at or below <see cref="UsedIndex"/>
/// was notified (or should have been), and <see cref="AvailIndex"/> ahead of <see cref="NextAvail"/> is
/// work the device has not taken. Owns copies only.
/// </summary>
public sealed record VsockQueueInfo
{
    /// <summary>The queue: 0 = RX, 1 = TX, 2 = event.</summary>
    public int Index { get; init; }

    /// <summary>The queue's name: <c>rx</c>, <c>tx</c> or <c>event</c>.</summary>
    public required string Name { get; init; }

    /// <summary>Whether the driver started the queue and the device serves it.</summary>
    public bool Running { get; init; }

    /// <summary>Whether the device stopped the queue after a ring error.</summary>
    public bool Broken { get; init; }

    /// <summary>The driver's <c>avail.idx</c>; <see langword="null"/> while the ring cannot be read.</summary>
    public ushort? AvailIndex { get; init; }

    /// <summary>The next available entry the device will take.</summary>
    public ushort NextAvail { get; init; }

    /// <summary>The <c>used.idx</c> published to the driver.</summary>
    public ushort UsedIndex { get; init; }

    /// <summary>The driver's <c>used_event</c> (EVENT_IDX only): the used index at which it wants its next interrupt.</summary>
    public ushort? UsedEvent { get; init; }

    /// <summary>Used-buffer notifications the device asked its transport to deliver on this queue.</summary>
    public long Notifications { get; init; }

    /// <summary>Notifications sent again because the driver had not taken its used buffers nor moved for a watch period.</summary>
    public long Repeated { get; init; }

    /// <summary>Publishes after which the driver's suppression (EVENT_IDX or NO_INTERRUPT) asked for no notification.</summary>
    public long Suppressed { get; init; }
}
