using System.Runtime.InteropServices;

namespace Virtio.Memory;

/// <summary>
/// Enters into this process's page tables the pages of a shared file mapping that the file already holds, so
/// that the device's first access to each guest page costs no page fault.
/// </summary>
/// <remarks>
/// <para>Why: a vhost-user backend maps guest RAM afresh, so each guest buffer page it first touches faults,
/// even though the guest has long had the page. Under a hypervisor a fault costs 5-15 us (measured on the
/// development VM: 12 us per write fault), and a stream's first 64 MiB touches hundreds of buffer pages: about
/// a tenth of its time went there. Entering them in bulk costs about 0.4 us per page.</para>
/// <para>How: in chunks of 512 pages, <c>mincore</c> says which pages are in the file's page cache, and
/// <c>MADV_POPULATE_READ</c> maps each run of those. It never allocates: a hole in the file stays a hole (a
/// read fault on shmem would allocate, which is why holes are skipped), and a page swapped out stays out. A
/// read populate of a shared mapping whose file needs no write notification (shmem, hugetlbfs) maps pages
/// writable; for other files the first write still takes a cheap write-protect fault and nothing is dirtied.
/// A page punched out between the two calls may be brought back; that window is one chunk wide.</para>
/// <para>Limits: it costs page tables (2 MiB per GiB mapped with 4 KiB pages), so callers bound the range.
/// The mapping is kept alive (a reference on its handle) only while a chunk is worked on, so a region released
/// meanwhile is unmapped at the next chunk boundary at the latest and the pass ends as cancelled.</para>
/// </remarks>
internal static class ResidentPagePrefault
{
    private const int ChunkPages = 512;

    /// <summary>Prefaults the resident pages of <c>[offset, offset + length)</c> of <paramref name="mapping"/> (a range inside it).</summary>
    internal static unsafe PrefaultResult Run(MappingHandle mapping, ulong offset, ulong length, CancellationToken cancellationToken)
    {
        ulong pageSize = (ulong)Environment.SystemPageSize;
        ulong start = offset & ~(pageSize - 1);
        ulong end = (offset + length + (pageSize - 1)) & ~(pageSize - 1); // inside the mapping, so far from overflowing
        byte* residency = stackalloc byte[ChunkPages];
        long scanned = 0;
        long mapped = 0;
        for (ulong chunk = start; chunk < end; chunk += ChunkPages * pageSize)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return new PrefaultResult(PrefaultOutcome.Cancelled, scanned, mapped, 0);
            }

            ulong chunkLength = Math.Min(ChunkPages * pageSize, end - chunk);
            int pages = (int)(chunkLength / pageSize);
            bool referenced = false;
            try
            {
                mapping.DangerousAddRef(ref referenced);
            }
            catch (ObjectDisposedException)
            {
                return new PrefaultResult(PrefaultOutcome.Cancelled, scanned, mapped, 0);
            }

            try
            {
                nint chunkAddress = mapping.Address + (nint)chunk;
                if (Interop.Sys.Mincore(chunkAddress, (nuint)chunkLength, residency) != 0)
                {
                    return new PrefaultResult(PrefaultOutcome.Failed, scanned, mapped, Marshal.GetLastPInvokeError());
                }

                scanned += pages;
                for (int page = 0; page < pages;)
                {
                    if ((residency[page] & 1) == 0)
                    {
                        page++;
                        continue;
                    }

                    int run = page;
                    while (run < pages && (residency[run] & 1) != 0)
                    {
                        run++;
                    }

                    if (Interop.Sys.Madvise(chunkAddress + (nint)((ulong)page * pageSize), (nuint)((ulong)(run - page) * pageSize), Interop.Sys.MadvPopulateRead) != 0)
                    {
                        int errno = Marshal.GetLastPInvokeError();
                        return new PrefaultResult(errno == Interop.Errors.EINVAL ? PrefaultOutcome.Unsupported : PrefaultOutcome.Failed, scanned, mapped, errno);
                    }

                    mapped += run - page;
                    page = run;
                }
            }
            finally
            {
                if (referenced)
                {
                    mapping.DangerousRelease();
                }
            }
        }

        return new PrefaultResult(PrefaultOutcome.Completed, scanned, mapped, 0);
    }
}
