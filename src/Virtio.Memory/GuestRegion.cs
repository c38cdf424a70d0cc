
namespace Virtio.Memory;

/// <summary>
/// One contiguous range of guest physical memory, <c>[Start, Start + Size)</c>, backed by host memory
/// that this object maps and owns.
/// </summary>
/// <remarks>
/// <para>A region is created by <see cref="CreateAnonymous"/> (private zeroed memory, for tests and
/// in-process VMMs) or <see cref="MapFile"/> (a shared read/write mapping of a file descriptor, which
/// is what a vhost-user frontend hands over for a memfd-backed guest).</para>
/// <para>The mapping is reference counted. <see cref="GuestMemory"/> takes a reference on each region
/// it is built from; <see cref="Dispose"/> drops the creator's reference. The host range is unmapped
/// when the last reference goes, so a region can be shared by an old and a new memory table while a
/// queue still works on the old one, and no access can reach unmapped memory.</para>
/// </remarks>
public sealed class GuestRegion : IDisposable
{
    private readonly MappingHandle _mapping;

    private readonly bool _fileBacked;

    private GuestRegion(GuestAddress start, ulong size, MappingHandle mapping, ulong hostOffset, bool fileBacked)
    {
        Start = start;
        Size = size;
        _mapping = mapping;
        HostOffset = hostOffset;
        _fileBacked = fileBacked;
    }

    /// <summary>The first guest physical address of the region.</summary>
    public GuestAddress Start { get; }

    /// <summary>The size of the region in bytes (at least 1).</summary>
    public ulong Size { get; }

    /// <summary>The last guest physical address inside the region.</summary>
    public GuestAddress Last => new(Start.Value + (Size - 1));

    /// <summary>Offset of the region's first byte inside the host mapping (the vhost-user <c>mmap_offset</c>).</summary>
    internal ulong HostOffset { get; }

    internal MappingHandle Mapping => _mapping;

    /// <summary>Creates a region of private, zero-filled anonymous memory.</summary>
    /// <param name="start">The guest physical address of the first byte.</param>
    /// <param name="size">The size in bytes; at least 1, and <c>start + size</c> must not overflow.</param>
    /// <returns>The region.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The size is 0 or the range overflows.</exception>
    /// <exception cref="IOException">The host refused to map the memory.</exception>
    public static GuestRegion CreateAnonymous(GuestAddress start, ulong size)
    {
        ValidateRange(start, size);
        MappingHandle mapping = MappingHandle.Map(
            checked((nuint)size), Interop.Sys.ProtRead | Interop.Sys.ProtWrite, Interop.Sys.MapPrivate | Interop.Sys.MapAnonymous | Interop.Sys.MapNoReserve, -1, 0);
        return new GuestRegion(start, size, mapping, 0, fileBacked: false);
    }

    /// <summary>
    /// Maps <c>mmapOffset + size</c> bytes of <paramref name="fd"/> shared and read/write, and uses the
    /// bytes from <paramref name="mmapOffset"/> on as guest memory <c>[start, start + size)</c>, the way
    /// a vhost-user backend maps a memory table entry.
    /// </summary>
    /// <param name="start">The guest physical address of the first byte.</param>
    /// <param name="size">The size in bytes; at least 1.</param>
    /// <param name="fd">An open file descriptor (for example a memfd). It is not closed by the region;
    /// the mapping stays valid after the descriptor is closed.</param>
    /// <param name="mmapOffset">Where guest memory begins inside the file.</param>
    /// <returns>The region.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The size is 0 or a range overflows.</exception>
    /// <exception cref="IOException">mmap failed (bad descriptor, file too small for the kernel, ...).</exception>
    public static GuestRegion MapFile(GuestAddress start, ulong size, int fd, ulong mmapOffset)
    {
        ValidateRange(start, size);
        ulong total = size + mmapOffset;
        if (total < size || total > long.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(mmapOffset), "mmap offset plus size overflows.");
        }

        MappingHandle mapping = MappingHandle.Map(
            (nuint)total, Interop.Sys.ProtRead | Interop.Sys.ProtWrite, Interop.Sys.MapShared | Interop.Sys.MapNoReserve, fd, 0);
        return new GuestRegion(start, size, mapping, mmapOffset, fileBacked: true);
    }

    /// <summary>Whether <paramref name="address"/> lies inside the region.</summary>
    /// <param name="address">A guest physical address.</param>
    /// <returns><see langword="true"/> when inside.</returns>
    public bool Contains(GuestAddress address) => address.Value >= Start.Value && address.Value - Start.Value < Size;

    /// <summary>
    /// Enters into this process's page tables the pages of the region's first <paramref name="maxBytes"/> bytes that
    /// its file already holds, so that the device's first access to each costs no page fault (5-15 us under a
    /// hypervisor). Never allocates file pages: holes and swapped-out pages are skipped. Costs page tables (2 MiB
    /// per GiB with 4 KiB pages) and about 0.4 us per resident page; meant for a background thread. A region
    /// created by <see cref="CreateAnonymous"/> is this process's own memory: nothing to do. Thread-safe; the
    /// region may be disposed meanwhile (the pass then ends as <see cref="PrefaultOutcome.Cancelled"/>).
    /// </summary>
    /// <param name="maxBytes">How much of the region, from its start, to cover at most.</param>
    /// <param name="cancellationToken">Ends the pass at the next 2 MiB chunk (with 4 KiB pages).</param>
    /// <returns>What was done; errors are values, nothing is thrown.</returns>
    public PrefaultResult PrefaultResidentPages(ulong maxBytes, CancellationToken cancellationToken = default) =>
        _fileBacked && maxBytes > 0
            ? ResidentPagePrefault.Run(_mapping, HostOffset, Math.Min(maxBytes, Size), cancellationToken)
            : new PrefaultResult(PrefaultOutcome.Completed, 0, 0, 0);

    /// <summary>Drops the creator's reference; the memory is unmapped once no <see cref="GuestMemory"/> uses it.</summary>
    public void Dispose() => _mapping.Dispose();

    /// <inheritdoc/>
    public override string ToString() => $"[{Start}, +0x{Size:x})";

    private static void ValidateRange(GuestAddress start, ulong size)
    {
        if (size == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(size), "A guest memory region must hold at least one byte.");
        }

        if (!start.TryAdd(size - 1, out _))
        {
            throw new ArgumentOutOfRangeException(nameof(size), $"Region {start} + 0x{size:x} overflows the guest address space.");
        }

        if (size > (ulong)nint.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(size), "Region larger than the host address space.");
        }
    }
}
