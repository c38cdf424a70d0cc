using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Virtio.Memory;

/// <summary>
/// The guest's physical memory as the device sees it: a fixed set of non-overlapping
/// <see cref="GuestRegion"/>s, with bounds-checked access that can never reach host memory outside them.
/// </summary>
/// <remarks>
/// <para><b>Design.</b> A <see cref="GuestMemory"/> is immutable: a new memory table (vhost-user
/// <c>SET_MEM_TABLE</c>, <c>ADD_MEM_REG</c>) builds a new instance, and the old one is disposed when the
/// queues have moved over. Regions are kept sorted by start address in flat arrays, and an address is
/// found by binary search (one comparison when there is a single region), so lookups stay a few
/// nanoseconds with the 32 regions a vhost-user frontend may send.</para>
/// <para><b>Errors are values.</b> Every accessor returns a <see cref="MemoryError"/>; none throws on a
/// bad address. A range may span several regions that are adjacent in guest physical space: byte copies
/// and <see cref="TryGetSpans"/> handle it, while atomic accesses and <see cref="TryGetSpan"/> (one host
/// span) report <see cref="MemoryError.CrossesRegions"/>.</para>
/// <para><b>Lifetime.</b> The instance is reference counted. Its creator holds one reference, released
/// by <see cref="Dispose"/>; code that works on the memory from another thread takes a lease
/// (<see cref="TryAcquire"/> / <see cref="Release"/>) for the duration of a batch. When the count reaches
/// zero the instance releases its regions (which unmap once no other instance uses them) and every
/// later access returns <see cref="MemoryError.Disposed"/>. Accesses without a lease are safe only on the
/// thread that owns the creator's reference.</para>
/// </remarks>
public sealed unsafe class GuestMemory : IDisposable
{
    private readonly GuestRegion[] _regions;
    private readonly ulong[] _starts;
    private readonly ulong[] _sizes;
    private readonly nint[] _hosts;
    private int _references = 1;
    private int _disposeCalled;
    private volatile bool _released;

    private GuestMemory(GuestRegion[] sorted)
    {
        _regions = sorted;
        _starts = new ulong[sorted.Length];
        _sizes = new ulong[sorted.Length];
        _hosts = new nint[sorted.Length];
        for (int i = 0; i < sorted.Length; i++)
        {
            GuestRegion region = sorted[i];
            bool added = false;
            region.Mapping.DangerousAddRef(ref added);
            _starts[i] = region.Start.Value;
            _sizes[i] = region.Size;
            _hosts[i] = region.Mapping.Address + (nint)region.HostOffset;
        }
    }

    /// <summary>The regions, sorted by start address.</summary>
    public IReadOnlyList<GuestRegion> Regions => _regions;

    /// <summary>Whether the memory was released: every access now fails with <see cref="MemoryError.Disposed"/>.</summary>
    public bool IsDisposed => _released;

    /// <summary>Builds guest memory from regions that must not overlap. Takes a reference on each region.</summary>
    /// <param name="regions">One or more regions, in any order.</param>
    /// <returns>The guest memory.</returns>
    /// <exception cref="ArgumentException">No region was given, or two regions overlap.</exception>
    public static GuestMemory Create(params ReadOnlySpan<GuestRegion> regions)
    {
        if (regions.IsEmpty)
        {
            throw new ArgumentException("Guest memory needs at least one region.", nameof(regions));
        }

        GuestRegion[] sorted = regions.ToArray();
        Array.Sort(sorted, static (a, b) => a.Start.CompareTo(b.Start));
        for (int i = 1; i < sorted.Length; i++)
        {
            if (sorted[i].Start.Value <= sorted[i - 1].Last.Value)
            {
                throw new ArgumentException($"Guest memory regions {sorted[i - 1]} and {sorted[i]} overlap.", nameof(regions));
            }
        }

        return new GuestMemory(sorted);
    }

    /// <summary>Creates guest memory of one anonymous region <c>[start, start + size)</c>, owning that region.</summary>
    /// <param name="start">The first guest physical address.</param>
    /// <param name="size">The size in bytes.</param>
    /// <returns>The guest memory.</returns>
    public static GuestMemory CreateAnonymous(GuestAddress start, ulong size)
    {
        using GuestRegion region = GuestRegion.CreateAnonymous(start, size);
        return Create(region);
    }

    /// <summary>Takes a lease that keeps the memory mapped until <see cref="Release"/>.</summary>
    /// <returns><see langword="false"/> when the memory was already released.</returns>
    public bool TryAcquire()
    {
        while (true)
        {
            int current = Volatile.Read(ref _references);
            if (current == 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _references, current + 1, current) == current)
            {
                return true;
            }
        }
    }

    /// <summary>Returns a lease taken with <see cref="TryAcquire"/>.</summary>
    public void Release()
    {
        int remaining = Interlocked.Decrement(ref _references);
        if (remaining == 0)
        {
            _released = true;
            foreach (GuestRegion region in _regions)
            {
                region.Mapping.DangerousRelease();
            }
        }
        else if (remaining < 0)
        {
            throw new InvalidOperationException("GuestMemory released more often than acquired.");
        }
    }

    /// <summary>Drops the creator's reference. Idempotent.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposeCalled, 1) == 0)
        {
            Release();
        }
    }

    /// <summary>Whether <paramref name="address"/> lies inside a region.</summary>
    /// <param name="address">The address.</param>
    /// <returns><see langword="true"/> when inside guest memory.</returns>
    public bool Contains(GuestAddress address) => FindRegion(address.Value) >= 0;

    /// <summary>Checks that every byte of <c>[address, address + length)</c> is inside guest memory.</summary>
    /// <param name="address">The first byte.</param>
    /// <param name="length">The number of bytes; 0 always succeeds when the memory is alive.</param>
    /// <returns>The error, or <see cref="MemoryError.None"/>.</returns>
    public MemoryError CheckRange(GuestAddress address, ulong length)
    {
        if (_released)
        {
            return MemoryError.Disposed;
        }

        if (length == 0)
        {
            return MemoryError.None;
        }

        return Walk(address.Value, length, out _, out _);
    }

    /// <summary>Copies <c>destination.Length</c> bytes of guest memory at <paramref name="address"/>.</summary>
    /// <param name="address">The first byte to read.</param>
    /// <param name="destination">Where the bytes go.</param>
    /// <returns>The error, or <see cref="MemoryError.None"/>. On error nothing is guaranteed about <paramref name="destination"/>.</returns>
    public MemoryError Read(GuestAddress address, Span<byte> destination)
    {
        MemoryError error = Translate(address.Value, (ulong)destination.Length, out byte* source);
        if (error == MemoryError.None)
        {
            new ReadOnlySpan<byte>(source, destination.Length).CopyTo(destination);
            return MemoryError.None;
        }

        return error == MemoryError.CrossesRegions ? CopySlow(address.Value, destination, default, toGuest: false) : error;
    }

    /// <summary>Copies <paramref name="source"/> into guest memory at <paramref name="address"/>.</summary>
    /// <param name="address">The first byte to write.</param>
    /// <param name="source">The bytes.</param>
    /// <returns>The error, or <see cref="MemoryError.None"/>. On error nothing was written.</returns>
    public MemoryError Write(GuestAddress address, ReadOnlySpan<byte> source)
    {
        MemoryError error = Translate(address.Value, (ulong)source.Length, out byte* target);
        if (error == MemoryError.None)
        {
            source.CopyTo(new Span<byte>(target, source.Length));
            return MemoryError.None;
        }

        return error == MemoryError.CrossesRegions ? CopySlow(address.Value, default, source, toGuest: true) : error;
    }

    /// <summary>Fills <c>[address, address + length)</c> with <paramref name="value"/>.</summary>
    /// <param name="address">The first byte.</param>
    /// <param name="length">The number of bytes.</param>
    /// <param name="value">The byte to write.</param>
    /// <returns>The error, or <see cref="MemoryError.None"/>. On error nothing was written.</returns>
    public MemoryError Fill(GuestAddress address, ulong length, byte value)
    {
        MemoryError error = TryGetSpans(address, length, out GuestSpanEnumerator spans);
        if (error != MemoryError.None)
        {
            return error;
        }

        foreach (Span<byte> span in spans)
        {
            span.Fill(value);
        }

        return MemoryError.None;
    }

    /// <summary>Reads a little-endian u16.</summary>
    /// <param name="address">The address of the first byte.</param>
    /// <param name="value">The value read, or 0 on error.</param>
    /// <returns>The error, or <see cref="MemoryError.None"/>.</returns>
    public MemoryError ReadU16(GuestAddress address, out ushort value)
    {
        Span<byte> buffer = stackalloc byte[sizeof(ushort)];
        MemoryError error = Read(address, buffer);
        value = error == MemoryError.None ? BinaryPrimitives.ReadUInt16LittleEndian(buffer) : (ushort)0;
        return error;
    }

    /// <summary>Reads a little-endian u32.</summary>
    /// <param name="address">The address of the first byte.</param>
    /// <param name="value">The value read, or 0 on error.</param>
    /// <returns>The error, or <see cref="MemoryError.None"/>.</returns>
    public MemoryError ReadU32(GuestAddress address, out uint value)
    {
        Span<byte> buffer = stackalloc byte[sizeof(uint)];
        MemoryError error = Read(address, buffer);
        value = error == MemoryError.None ? BinaryPrimitives.ReadUInt32LittleEndian(buffer) : 0u;
        return error;
    }

    /// <summary>Reads a little-endian u64.</summary>
    /// <param name="address">The address of the first byte.</param>
    /// <param name="value">The value read, or 0 on error.</param>
    /// <returns>The error, or <see cref="MemoryError.None"/>.</returns>
    public MemoryError ReadU64(GuestAddress address, out ulong value)
    {
        Span<byte> buffer = stackalloc byte[sizeof(ulong)];
        MemoryError error = Read(address, buffer);
        value = error == MemoryError.None ? BinaryPrimitives.ReadUInt64LittleEndian(buffer) : 0ul;
        return error;
    }

    /// <summary>Writes a little-endian u16.</summary>
    /// <param name="address">The address of the first byte.</param>
    /// <param name="value">The value.</param>
    /// <returns>The error, or <see cref="MemoryError.None"/>.</returns>
    public MemoryError WriteU16(GuestAddress address, ushort value)
    {
        Span<byte> buffer = stackalloc byte[sizeof(ushort)];
        BinaryPrimitives.WriteUInt16LittleEndian(buffer, value);
        return Write(address, buffer);
    }

    /// <summary>Writes a little-endian u32.</summary>
    /// <param name="address">The address of the first byte.</param>
    /// <param name="value">The value.</param>
    /// <returns>The error, or <see cref="MemoryError.None"/>.</returns>
    public MemoryError WriteU32(GuestAddress address, uint value)
    {
        Span<byte> buffer = stackalloc byte[sizeof(uint)];
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, value);
        return Write(address, buffer);
    }

    /// <summary>Writes a little-endian u64.</summary>
    /// <param name="address">The address of the first byte.</param>
    /// <param name="value">The value.</param>
    /// <returns>The error, or <see cref="MemoryError.None"/>.</returns>
    public MemoryError WriteU64(GuestAddress address, ulong value)
    {
        Span<byte> buffer = stackalloc byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64LittleEndian(buffer, value);
        return Write(address, buffer);
    }

    /// <summary>
    /// Reads a naturally aligned little-endian u16 with acquire semantics: no later memory read moves
    /// before it. For ring indices the other side updates concurrently.
    /// </summary>
    /// <param name="address">A 2-byte aligned address.</param>
    /// <param name="value">The value read, or 0 on error.</param>
    /// <returns>The error (<see cref="MemoryError.Misaligned"/> for an odd address), or <see cref="MemoryError.None"/>.</returns>
    public MemoryError LoadU16Acquire(GuestAddress address, out ushort value)
    {
        value = 0;
        if ((address.Value & 1) != 0)
        {
            return MemoryError.Misaligned;
        }

        MemoryError error = Translate(address.Value, sizeof(ushort), out byte* pointer);
        if (error == MemoryError.None)
        {
            ushort raw = Volatile.Read(ref *(ushort*)pointer);
            value = BitConverter.IsLittleEndian ? raw : BinaryPrimitives.ReverseEndianness(raw);
        }

        return error;
    }

    /// <summary>
    /// Writes a naturally aligned little-endian u16 with release semantics: every earlier memory write is
    /// visible before it. For publishing ring indices.
    /// </summary>
    /// <param name="address">A 2-byte aligned address.</param>
    /// <param name="value">The value.</param>
    /// <returns>The error, or <see cref="MemoryError.None"/>.</returns>
    public MemoryError StoreU16Release(GuestAddress address, ushort value)
    {
        if ((address.Value & 1) != 0)
        {
            return MemoryError.Misaligned;
        }

        MemoryError error = Translate(address.Value, sizeof(ushort), out byte* pointer);
        if (error == MemoryError.None)
        {
            Volatile.Write(ref *(ushort*)pointer, BitConverter.IsLittleEndian ? value : BinaryPrimitives.ReverseEndianness(value));
        }

        return error;
    }

    /// <summary>
    /// Gets the host memory behind <c>[address, address + length)</c> as one span, when the range lies in a
    /// single region. The span must not be used after the memory is released: keep a lease while it lives.
    /// </summary>
    /// <param name="address">The first byte.</param>
    /// <param name="length">The number of bytes.</param>
    /// <param name="span">The host memory, or an empty span on error.</param>
    /// <returns>The error (<see cref="MemoryError.CrossesRegions"/> when the range is valid but split), or <see cref="MemoryError.None"/>.</returns>
    public MemoryError TryGetSpan(GuestAddress address, int length, out Span<byte> span)
    {
        if (length < 0)
        {
            span = default;
            return MemoryError.RangeOutsideMemory;
        }

        MemoryError error = Translate(address.Value, (ulong)length, out byte* pointer);
        span = error == MemoryError.None ? new Span<byte>(pointer, length) : default;
        return error;
    }

    /// <summary>
    /// Gets the host memory behind <c>[address, address + length)</c> as a sequence of spans, one per region
    /// the range touches (and per 1 GiB inside a region). The whole range is checked first.
    /// </summary>
    /// <param name="address">The first byte.</param>
    /// <param name="length">The number of bytes.</param>
    /// <param name="spans">An enumerator of the spans (use with <c>foreach</c>).</param>
    /// <returns>The error, or <see cref="MemoryError.None"/>.</returns>
    public MemoryError TryGetSpans(GuestAddress address, ulong length, out GuestSpanEnumerator spans)
    {
        spans = default;
        if (_released)
        {
            return MemoryError.Disposed;
        }

        if (length == 0)
        {
            spans = new GuestSpanEnumerator(this, address.Value, 0, 0);
            return MemoryError.None;
        }

        MemoryError error = Walk(address.Value, length, out int first, out _);
        if (error == MemoryError.None)
        {
            spans = new GuestSpanEnumerator(this, address.Value, length, first);
        }

        return error;
    }

    /// <summary>Finds the region holding <paramref name="address"/>.</summary>
    /// <param name="address">A guest physical address.</param>
    /// <returns>The region index in <see cref="Regions"/>, or -1.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal int FindRegion(ulong address)
    {
        ulong[] starts = _starts;
        if (starts.Length == 1)
        {
            return address - starts[0] < _sizes[0] && address >= starts[0] ? 0 : -1;
        }

        int low = 0;
        int high = starts.Length - 1;
        while (low <= high)
        {
            int middle = (low + high) >>> 1;
            if (starts[middle] <= address)
            {
                low = middle + 1;
            }
            else
            {
                high = middle - 1;
            }
        }

        // high is the last region starting at or below the address.
        return high >= 0 && address - starts[high] < _sizes[high] ? high : -1;
    }

    /// <summary>Host pointer of a contiguous range inside one region.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal MemoryError Translate(ulong address, ulong length, out byte* pointer)
    {
        pointer = null;
        if (_released)
        {
            return MemoryError.Disposed;
        }

        int index = FindRegion(address);
        if (index < 0)
        {
            return length == 0 ? MemoryError.None : MemoryError.InvalidAddress;
        }

        ulong offset = address - _starts[index];
        if (length > _sizes[index] - offset)
        {
            MemoryError walk = Walk(address, length, out _, out _);
            return walk == MemoryError.None ? MemoryError.CrossesRegions : walk;
        }

        pointer = (byte*)_hosts[index] + offset;
        return MemoryError.None;
    }

    /// <summary>Host pointer and usable length of the piece of region <paramref name="index"/> at <paramref name="address"/>.</summary>
    internal byte* HostPointer(int index, ulong address, out ulong available)
    {
        ulong offset = address - _starts[index];
        available = _sizes[index] - offset;
        return (byte*)_hosts[index] + offset;
    }

    /// <summary>Checks a non-empty range region by region; adjacent regions continue a range.</summary>
    private MemoryError Walk(ulong address, ulong length, out int firstRegion, out int regionCount)
    {
        firstRegion = FindRegion(address);
        regionCount = 0;
        if (firstRegion < 0)
        {
            return MemoryError.InvalidAddress;
        }

        ulong last = address + (length - 1);
        if (last < address)
        {
            return MemoryError.AddressOverflow;
        }

        int index = firstRegion;
        ulong cursor = address;
        while (true)
        {
            regionCount++;
            ulong regionEnd = _starts[index] + (_sizes[index] - 1);
            if (last <= regionEnd)
            {
                return MemoryError.None;
            }

            cursor = regionEnd + 1;
            index++;
            if (index >= _starts.Length || _starts[index] != cursor)
            {
                return MemoryError.RangeOutsideMemory;
            }
        }
    }

    private MemoryError CopySlow(ulong address, Span<byte> destination, ReadOnlySpan<byte> source, bool toGuest)
    {
        int length = toGuest ? source.Length : destination.Length;
        MemoryError error = TryGetSpans(new GuestAddress(address), (ulong)length, out GuestSpanEnumerator spans);
        if (error != MemoryError.None)
        {
            return error;
        }

        int done = 0;
        foreach (Span<byte> span in spans)
        {
            if (toGuest)
            {
                source.Slice(done, span.Length).CopyTo(span);
            }
            else
            {
                span.CopyTo(destination.Slice(done, span.Length));
            }

            done += span.Length;
        }

        return MemoryError.None;
    }
}
