using Virtio.Memory;

namespace Virtio.Queue.Testing;

/// <summary>
/// A bump allocator of guest physical addresses for tests: hands out aligned, non-overlapping ranges from
/// <c>[start, start + size)</c> and never frees them individually (<see cref="Reset"/> starts over).
/// </summary>
/// <remarks>
/// It only computes addresses; it does not touch guest memory. Exhaustion is a test bug and throws.
/// </remarks>
public sealed class GuestAllocator
{
    private ulong _next;

    /// <summary>Creates an allocator over <c>[start, start + size)</c>.</summary>
    /// <param name="start">The first address that may be handed out.</param>
    /// <param name="size">The number of bytes available.</param>
    /// <exception cref="ArgumentOutOfRangeException">The range overflows 64 bits.</exception>
    public GuestAllocator(GuestAddress start, ulong size)
    {
        if (!start.TryAdd(size, out GuestAddress end))
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "The allocator range overflows the guest address space.");
        }

        Start = start;
        End = end;
        _next = start.Value;
    }

    /// <summary>Creates an allocator over the first region of <paramref name="memory"/>.</summary>
    /// <param name="memory">The guest memory.</param>
    /// <returns>The allocator.</returns>
    public static GuestAllocator ForFirstRegion(GuestMemory memory)
    {
        ArgumentNullException.ThrowIfNull(memory);
        GuestRegion region = memory.Regions[0];
        return new GuestAllocator(region.Start, region.Size);
    }

    /// <summary>The first address of the range.</summary>
    public GuestAddress Start { get; }

    /// <summary>The first address after the range.</summary>
    public GuestAddress End { get; }

    /// <summary>The address the next allocation starts from (before alignment).</summary>
    public GuestAddress Next => new(_next);

    /// <summary>Bytes not handed out yet.</summary>
    public ulong Remaining => End.Value - _next;

    /// <summary>Allocates <paramref name="length"/> bytes aligned to <paramref name="alignment"/>.</summary>
    /// <param name="length">The number of bytes.</param>
    /// <param name="alignment">A power of two.</param>
    /// <returns>The first address of the allocation.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="alignment"/> is not a power of two.</exception>
    /// <exception cref="InvalidOperationException">The range is exhausted.</exception>
    public GuestAddress Allocate(ulong length, ulong alignment = 16)
    {
        if (alignment == 0 || (alignment & (alignment - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "The alignment must be a power of two.");
        }

        ulong start = (_next + (alignment - 1)) & ~(alignment - 1);
        if (start < _next || start > End.Value || End.Value - start < length)
        {
            throw new InvalidOperationException($"Guest allocator exhausted: 0x{length:x} bytes do not fit in [{Next}, {End}).");
        }

        _next = start + length;
        return new GuestAddress(start);
    }

    /// <summary>Forgets every allocation.</summary>
    public void Reset() => _next = Start.Value;
}
