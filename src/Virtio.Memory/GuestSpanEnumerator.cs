namespace Virtio.Memory;

/// <summary>
/// Enumerates the host spans behind a guest range that <see cref="GuestMemory.TryGetSpans"/> has
/// already checked: one span per region the range touches, split further at 1 GiB so each fits a
/// <see cref="Span{T}"/>. A <c>ref struct</c>, so the spans cannot be stored on the heap.
/// </summary>
public unsafe ref struct GuestSpanEnumerator
{
    private const ulong MaxChunk = 1UL << 30;

    private readonly GuestMemory? _memory;
    private ulong _address;
    private ulong _remaining;
    private int _region;
    private Span<byte> _current;

    internal GuestSpanEnumerator(GuestMemory memory, ulong address, ulong length, int firstRegion)
    {
        _memory = memory;
        _address = address;
        _remaining = length;
        _region = firstRegion;
        _current = default;
    }

    /// <summary>The current span.</summary>
    public readonly Span<byte> Current => _current;

    /// <summary>Returns this enumerator, for <c>foreach</c>.</summary>
    /// <returns>This enumerator.</returns>
    public readonly GuestSpanEnumerator GetEnumerator() => this;

    /// <summary>Advances to the next span.</summary>
    /// <returns><see langword="false"/> when the range is exhausted.</returns>
    public bool MoveNext()
    {
        if (_remaining == 0 || _memory is null)
        {
            return false;
        }

        byte* pointer = _memory.HostPointer(_region, _address, out ulong available);
        ulong take = Math.Min(Math.Min(available, _remaining), MaxChunk);
        _current = new Span<byte>(pointer, (int)take);
        _address += take;
        _remaining -= take;
        if (take == available)
        {
            _region++;
        }

        return true;
    }
}
