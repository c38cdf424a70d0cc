using Virtio.Memory;

namespace Virtio.Vsock;

/// <summary>
/// Enumerates the host spans behind part of a packet's payload buffer: one or more spans per guest
/// buffer (more when a buffer crosses memory regions), or one span of a host buffer. A <c>ref struct</c>
/// so the spans cannot be stored; if guest memory went away meanwhile, enumeration stops and
/// <see cref="Error"/> says so.
/// </summary>
public ref struct DataSpanEnumerator
{
    private readonly GuestMemory? _memory;
    private readonly ReadOnlySpan<PacketSegment> _segments;
    private Span<byte> _host;
    private bool _hostPending;
    private int _segment;
    private uint _skip;
    private uint _remaining;
    private GuestSpanEnumerator _inner;
    private bool _innerActive;
    private Span<byte> _current;

    internal DataSpanEnumerator(Span<byte> host)
    {
        _host = host;
        _hostPending = !host.IsEmpty;
    }

    internal DataSpanEnumerator(GuestMemory memory, ReadOnlySpan<PacketSegment> segments, uint offset, uint count)
    {
        _memory = memory;
        _segments = segments;
        _skip = offset;
        _remaining = count;
    }

    /// <summary>The current span.</summary>
    public readonly Span<byte> Current => _current;

    /// <summary>Set when guest memory refused an access (it was released); enumeration stopped there.</summary>
    public VsockPacketError Error { get; private set; }

    /// <summary>Returns this enumerator, for <c>foreach</c>.</summary>
    /// <returns>This enumerator.</returns>
    public readonly DataSpanEnumerator GetEnumerator() => this;

    /// <summary>Advances to the next span.</summary>
    /// <returns><see langword="false"/> when done (or on error).</returns>
    public bool MoveNext()
    {
        if (_memory is null)
        {
            if (!_hostPending)
            {
                return false;
            }

            _hostPending = false;
            _current = _host;
            return true;
        }

        while (true)
        {
            if (_innerActive && _inner.MoveNext())
            {
                _current = _inner.Current;
                return true;
            }

            _innerActive = false;
            if (_remaining == 0 || _segment >= _segments.Length)
            {
                return false;
            }

            PacketSegment segment = _segments[_segment++];
            if (_skip >= segment.Length)
            {
                _skip -= segment.Length;
                continue;
            }

            uint take = Math.Min(segment.Length - _skip, _remaining);
            ulong address = segment.Address + _skip;
            _skip = 0;
            _remaining -= take;
            if (_memory.TryGetSpans(new GuestAddress(address), take, out _inner) != MemoryError.None)
            {
                Error = VsockPacketError.InvalidMemoryAccess(address);
                _remaining = 0;
                return false;
            }

            _innerActive = true;
        }
    }
}
