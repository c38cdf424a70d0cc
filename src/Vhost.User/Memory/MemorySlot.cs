using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Virtio.Memory;

namespace Vhost.User;

/// <summary>
/// One region of the frontend's memory table: the mapped <see cref="GuestRegion"/> (this slot owns the
/// creator's reference), the frontend virtual address it corresponds to, and the background pass that maps the
/// pages the guest already has (<see cref="StartPrefault"/>), which it stops when disposed.
/// </summary>
internal sealed class MemorySlot : IDisposable
{
    private readonly CancellationTokenSource _prefault = new();

    internal MemorySlot(GuestRegion region, ulong userAddress)
    {
        Region = region;
        UserAddress = userAddress;
    }

    /// <summary>The mapped region.</summary>
    internal GuestRegion Region { get; }

    /// <summary>The frontend's virtual address of the region's first byte.</summary>
    internal ulong UserAddress { get; }

    /// <summary>The last frontend virtual address inside the region.</summary>
    internal ulong LastUserAddress => UserAddress + (Region.Size - 1);

    /// <summary>Translates a frontend virtual address inside this slot to a guest physical address.</summary>
    internal bool TryTranslate(ulong userAddress, out GuestAddress guestAddress)
    {
        if (userAddress >= UserAddress && userAddress - UserAddress < Region.Size)
        {
            guestAddress = new GuestAddress(Region.Start.Value + (userAddress - UserAddress));
            return true;
        }

        guestAddress = default;
        return false;
    }

    /// <summary>How much of the region, from its start, the background pass covers (0 when none was started).</summary>
    internal ulong PrefaultBytes { get; private set; }

    /// <summary>
    /// Maps, on a thread-pool thread, the pages of the region's first <paramref name="maxBytes"/> bytes that the guest
    /// already has (<see cref="GuestRegion.PrefaultResidentPages"/>), so the device's first touch of a guest buffer
    /// takes no page fault. Never allocates guest memory; stops at the next 2 MiB when the slot is disposed.
    /// </summary>
    internal void StartPrefault(ulong maxBytes, ILogger logger)
    {
        PrefaultBytes = Math.Min(maxBytes, Region.Size);
        if (PrefaultBytes == 0)
        {
            return;
        }

        GuestRegion region = Region;
        ulong bytes = PrefaultBytes;
        CancellationToken stop = _prefault.Token;
        _ = Task.Run(
            () =>
            {
                long started = Stopwatch.GetTimestamp();
                PrefaultResult result = region.PrefaultResidentPages(bytes, stop);
                Log.Prefaulted(logger, region.ToString(), result.ToString(), Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            },
            CancellationToken.None);
    }

    /// <summary>Stops the background pass and drops the creator's reference; the mapping lives on while a memory table uses it.</summary>
    public void Dispose()
    {
        _prefault.Cancel();
        Region.Dispose();
    }
}
