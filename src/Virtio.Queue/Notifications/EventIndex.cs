using System.Runtime.CompilerServices;

namespace Virtio.Queue;

/// <summary>
/// The VIRTIO_F_EVENT_IDX notification test (<c>vring_need_event</c>), on free-running u16 indices.
/// </summary>
/// <remarks>
/// With event indices, the other side publishes the index at which it wants to be woken
/// (<c>used_event</c> for the driver, <c>avail_event</c> for the device). Moving an index from
/// <c>oldIndex</c> to <c>newIndex</c> warrants a notification iff the event index lies in
/// <c>[oldIndex, newIndex)</c>, computed modulo 2^16 so that wrap-around at 0xffff is exact:
/// <c>(u16)(new - event - 1) &lt; (u16)(new - old)</c>.
/// </remarks>
public static class EventIndex
{
    /// <summary>Whether moving an index from <paramref name="oldIndex"/> to <paramref name="newIndex"/> passes <paramref name="eventIndex"/>.</summary>
    /// <param name="eventIndex">The index the other side asked to be notified at.</param>
    /// <param name="newIndex">The index after the update.</param>
    /// <param name="oldIndex">The index at the previous notification decision.</param>
    /// <returns><see langword="true"/> when a notification is needed.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool NeedsEvent(ushort eventIndex, ushort newIndex, ushort oldIndex) =>
        (ushort)(newIndex - eventIndex - 1) < (ushort)(newIndex - oldIndex);
}
