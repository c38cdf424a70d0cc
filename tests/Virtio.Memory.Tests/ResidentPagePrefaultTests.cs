using Microsoft.Win32.SafeHandles;

namespace Virtio.Memory.Tests;

/// <summary>
/// <see cref="GuestRegion.PrefaultResidentPages"/>: resident pages of the file end up mapped (touching them takes
/// no page fault), holes stay holes, and the pass stops on cancellation or release without touching unmapped memory.
/// </summary>
public sealed class ResidentPagePrefaultTests
{
    private const int Pages = 1024; // 4 MiB with 4 KiB pages: two chunks

    // The runtime's own faults on the reading thread now and then (a stack page, a tier-up); reading the 342 written
    // pages of a fresh mapping takes at least 342 / 16 = 21 faults even with fault-around.
    private const long RuntimeNoise = 3;
    private static readonly ulong PageSize = (ulong)Environment.SystemPageSize;

    [Fact]
    public void ResidentPagesAreMappedAndHolesAreLeftAlone()
    {
        using SafeFileHandle file = SharedMemoryFile.CreateSealed("prefault", (long)(Pages * PageSize));
        int resident = WriteEveryThirdPage(file);

        using GuestRegion region = GuestRegion.MapFile(new GuestAddress(0x10_0000), Pages * PageSize, (int)file.DangerousGetHandle(), 0);
        PrefaultResult result = region.PrefaultResidentPages(ulong.MaxValue, TestContext.Current.CancellationToken);

        Assert.Equal(new PrefaultResult(PrefaultOutcome.Completed, Pages, resident, 0), result);
        using GuestMemory memory = GuestMemory.Create(region);
        Assert.InRange(MinorFaultsWhileReading(memory, region.Start, page => page % 3 == 0), 0, RuntimeNoise);

        // The pass allocated nothing: a second mapping still finds exactly the pages written, no hole filled.
        using GuestRegion again = GuestRegion.MapFile(new GuestAddress(0), Pages * PageSize, (int)file.DangerousGetHandle(), 0);
        Assert.Equal(resident, again.PrefaultResidentPages(ulong.MaxValue, TestContext.Current.CancellationToken).PagesMapped);
    }

    [Fact]
    public void WithoutAPassTheSameReadsFault()
    {
        // The control for the test above: reading a fresh mapping does fault, so zero faults there means something.
        using SafeFileHandle file = SharedMemoryFile.CreateSealed("prefault-control", (long)(Pages * PageSize));
        WriteEveryThirdPage(file);
        using GuestRegion region = GuestRegion.MapFile(new GuestAddress(0), Pages * PageSize, (int)file.DangerousGetHandle(), 0);
        using GuestMemory memory = GuestMemory.Create(region);
        Assert.True(MinorFaultsWhileReading(memory, region.Start, page => page % 3 == 0) > RuntimeNoise);
    }

    [Fact]
    public void OnlyTheRegionAfterItsMmapOffsetAndWithinTheBoundIsCovered()
    {
        using SafeFileHandle file = SharedMemoryFile.CreateSealed("prefault-offset", (long)(Pages * PageSize));
        WriteEveryThirdPage(file);
        ulong offset = 16 * PageSize;
        using GuestRegion region = GuestRegion.MapFile(new GuestAddress(0), (Pages - 16) * PageSize, (int)file.DangerousGetHandle(), offset);

        PrefaultResult bounded = region.PrefaultResidentPages(100 * PageSize, TestContext.Current.CancellationToken);

        Assert.Equal(PrefaultOutcome.Completed, bounded.Outcome);
        Assert.Equal(100, bounded.PagesScanned);
        Assert.Equal(Enumerable.Range(16, 100).Count(page => page % 3 == 0), bounded.PagesMapped);
    }

    [Fact]
    public void ACancelledOrReleasedRegionEndsThePassAsCancelled()
    {
        using SafeFileHandle file = SharedMemoryFile.CreateSealed("prefault-cancel", (long)(Pages * PageSize));
        WriteEveryThirdPage(file);
        GuestRegion region = GuestRegion.MapFile(new GuestAddress(0), Pages * PageSize, (int)file.DangerousGetHandle(), 0);

        Assert.Equal(new PrefaultResult(PrefaultOutcome.Cancelled, 0, 0, 0), region.PrefaultResidentPages(ulong.MaxValue, new CancellationToken(canceled: true)));
        region.Dispose();
        Assert.Equal(new PrefaultResult(PrefaultOutcome.Cancelled, 0, 0, 0), region.PrefaultResidentPages(ulong.MaxValue, TestContext.Current.CancellationToken));
    }

    [Fact]
    public void AnonymousMemoryHasNothingToDo()
    {
        using GuestRegion region = GuestRegion.CreateAnonymous(new GuestAddress(0), Pages * PageSize);
        Assert.Equal(new PrefaultResult(PrefaultOutcome.Completed, 0, 0, 0), region.PrefaultResidentPages(ulong.MaxValue, TestContext.Current.CancellationToken));
    }

    /// <summary>Writes every third page of the file through a mapping of its own; returns how many.</summary>
    private static int WriteEveryThirdPage(SafeFileHandle file)
    {
        using GuestRegion writer = GuestRegion.MapFile(new GuestAddress(0), Pages * PageSize, (int)file.DangerousGetHandle(), 0);
        using GuestMemory memory = GuestMemory.Create(writer);
        int written = 0;
        for (int page = 0; page < Pages; page += 3)
        {
            Assert.Equal(MemoryError.None, memory.WriteU32(new GuestAddress((ulong)page * PageSize), 0xC0FFEE));
            written++;
        }

        return written;
    }

    private static long MinorFaultsWhileReading(GuestMemory memory, GuestAddress start, Func<int, bool> pageIsRead)
    {
        // Once over memory of our own first, so that compiling the loop (the JIT's own page faults) is not counted.
        using (GuestMemory warm = GuestMemory.CreateAnonymous(new GuestAddress(0), Pages * PageSize))
        {
            _ = CountMinorFaults(warm, new GuestAddress(0), pageIsRead, out _);
        }

        long faults = CountMinorFaults(memory, start, pageIsRead, out int wrong);
        Assert.Equal(0, wrong);
        return faults;
    }

    private static unsafe long CountMinorFaults(GuestMemory memory, GuestAddress start, Func<int, bool> pageIsRead, out int wrong)
    {
        Interop.Sys.RUsage before;
        Interop.Sys.RUsage after;
        wrong = 0;
        Assert.Equal(0, Interop.Sys.GetRusage(Interop.Sys.RusageThread, &before));
        for (int page = 0; page < Pages; page++)
        {
            if (pageIsRead(page) && (!start.TryAdd((ulong)page * PageSize, out GuestAddress at) || memory.ReadU32(at, out uint value) != MemoryError.None || value != 0xC0FFEE))
            {
                wrong++;
            }
        }

        Assert.Equal(0, Interop.Sys.GetRusage(Interop.Sys.RusageThread, &after));
        return after.MinorFaults - before.MinorFaults;
    }
}
