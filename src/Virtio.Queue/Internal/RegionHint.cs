using System.Runtime.CompilerServices;
using Virtio.Memory;

namespace Virtio.Queue;

/// <summary>
/// The bounds of one guest memory region (the largest), cached when a queue binds to a
/// <see cref="GuestMemory"/>, so that checking a descriptor's buffer usually costs two comparisons
/// instead of a region lookup.
/// </summary>
/// <remarks>
/// A hint only ever says yes for ranges that lie inside that region, which is exact because a
/// <see cref="GuestMemory"/> never changes its regions. Anything else (other regions, ranges across
/// regions, garbage) falls back to <see cref="GuestMemory.CheckRange"/>.
/// </remarks>
internal readonly struct RegionHint
{
    private readonly ulong _start;
    private readonly ulong _size;

    private RegionHint(ulong start, ulong size)
    {
        _start = start;
        _size = size;
    }

    /// <summary>The hint for the largest region of <paramref name="memory"/>.</summary>
    public static RegionHint For(GuestMemory memory)
    {
        GuestRegion? largest = null;
        foreach (GuestRegion region in memory.Regions)
        {
            if (largest is null || region.Size > largest.Size)
            {
                largest = region;
            }
        }

        return largest is null ? default : new RegionHint(largest.Start.Value, largest.Size);
    }

    /// <summary>Whether <c>[address, address + length)</c> certainly lies inside guest memory.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Contains(ulong address, uint length)
    {
        ulong offset = address - _start;
        return offset < _size && length <= _size - offset;
    }
}
