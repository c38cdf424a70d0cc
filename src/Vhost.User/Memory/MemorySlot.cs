using Virtio.Memory;

namespace Vhost.User;

/// <summary>
/// One region of the frontend's memory table: the mapped <see cref="GuestRegion"/> (this slot owns the
/// creator's reference) and the frontend virtual address it corresponds to.
/// </summary>
internal sealed class MemorySlot : IDisposable
{
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

    /// <summary>Drops the creator's reference; the mapping lives on while a memory table uses it.</summary>
    public void Dispose() => Region.Dispose();
}
