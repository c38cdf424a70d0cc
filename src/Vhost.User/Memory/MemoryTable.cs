using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using Virtio.Memory;

namespace Vhost.User;

/// <summary>
/// The guest memory table of one connection: SET_MEM_TABLE, ADD_MEM_REG and REM_MEM_REG. Checks every region
/// (size, overflow, a regular file large enough for the mapping, F_SEAL_SHRINK or a warning), maps it, refuses
/// overlaps, hands each new <see cref="GuestMemory"/> to the backend and translates frontend ring addresses to
/// guest physical ones. Owns the mappings (<see cref="MemorySlot"/>s) and this connection's reference to the current
/// table. Touched by the control thread only; must never map past the end of a file (SIGBUS) nor keep a table the
/// backend was not given.
/// </summary>
internal sealed class MemoryTable(RequestContext context, IVhostUserBackend backend) : IDisposable
{
    /// <summary>The number of regions one SET_MEM_TABLE carries at most.</summary>
    internal const int MaxTableRegions = 8;

    /// <summary>
    /// How much guest memory, over all regions, is prefaulted at most (<see cref="MemorySlot.StartPrefault"/>): the
    /// page tables of 4 GiB with 4 KiB pages take 8 MiB. Beyond it pages fault in as the device touches them.
    /// </summary>
    internal const ulong MaxPrefaultBytes = 4UL << 30;

    private readonly List<MemorySlot> _slots = [];
    private GuestMemory? _memory;
    private bool _unsealedWarned;

    /// <summary>Whether a memory table is installed.</summary>
    internal bool HasMemory => _memory is not null;

    /// <summary>Refuses unless [<paramref name="address"/>, +<paramref name="length"/>) lies inside guest memory.</summary>
    /// <param name="index">The queue (for the reason).</param>
    /// <param name="part">The ring part (for the reason).</param>
    /// <param name="address">The first guest physical byte.</param>
    /// <param name="length">The length in bytes.</param>
    /// <returns>Whether the range is inside.</returns>
    internal bool CheckRange(int index, string part, GuestAddress address, ulong length)
    {
        MemoryError error = _memory is null ? MemoryError.InvalidAddress : _memory.CheckRange(address, length);
        return error == MemoryError.None
            || context.Refuse($"queue {index} {part} [{address}, +0x{length:x}) is not inside guest memory ({error})");
    }

    /// <summary>Releases every mapping and the current table (device reset, disconnect).</summary>
    public void Dispose()
    {
        _memory?.Dispose();
        _memory = null;
        foreach (MemorySlot slot in _slots)
        {
            slot.Dispose();
        }

        _slots.Clear();
    }

    internal bool HandleSetMemTable(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 8)
        {
            return context.Refuse($"payload of {payload.Length} bytes is shorter than the 8-byte table header");
        }

        uint count = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        if (count == 0 || count > MaxTableRegions)
        {
            return context.Refuse($"region count {count} is outside 1..{MaxTableRegions}");
        }

        int expected = 8 + ((int)count * RegionDescriptor.EncodedSize);
        if (payload.Length != expected)
        {
            return context.Refuse($"payload of {payload.Length} bytes does not match {count} regions ({expected} bytes)");
        }

        if (!context.ExpectFds((int)count))
        {
            return false;
        }

        var mapped = new List<MemorySlot>((int)count);
        try
        {
            for (int i = 0; i < count; i++)
            {
                var region = RegionDescriptor.Read(payload.Slice(8 + (i * RegionDescriptor.EncodedSize), RegionDescriptor.EncodedSize));
                if (!TryMapRegion(region, context.Channel.Fds[i]!, out MemorySlot? slot))
                {
                    return false;
                }

                mapped.Add(slot);
            }

            if (!TryBuildMemory(mapped, out GuestMemory? memory))
            {
                return false;
            }

            List<MemorySlot> old = [.. _slots];
            _slots.Clear();
            _slots.AddRange(mapped);
            mapped.Clear();
            Install(memory);
            foreach (MemorySlot slot in old)
            {
                slot.Dispose();
            }

            foreach (MemorySlot slot in _slots)
            {
                StartPrefault(slot);
            }

            return true;
        }
        finally
        {
            foreach (MemorySlot slot in mapped)
            {
                slot.Dispose();
            }
        }
    }

    internal bool HandleAddMemReg(ReadOnlySpan<byte> payload)
    {
        if (!context.RequireNegotiated(VhostUserProtocolFeatures.ConfigureMemSlots)
            || !context.ExpectSize(payload, 8 + RegionDescriptor.EncodedSize) || !context.ExpectFds(1))
        {
            return false;
        }

        if (_slots.Count >= VhostUserConnection.MaxMemorySlots)
        {
            return context.Refuse($"all {VhostUserConnection.MaxMemorySlots} memory slots are in use");
        }

        var region = RegionDescriptor.Read(payload[8..]);
        if (!TryMapRegion(region, context.Channel.Fds[0]!, out MemorySlot? slot))
        {
            return false;
        }

        List<MemorySlot> candidate = [.. _slots, slot];
        if (!TryBuildMemory(candidate, out GuestMemory? memory))
        {
            slot.Dispose();
            return false;
        }

        _slots.Add(slot);
        Install(memory);
        StartPrefault(slot);
        return true;
    }

    /// <summary>Starts <paramref name="slot"/>'s background prefault within what <see cref="MaxPrefaultBytes"/> leaves.</summary>
    private void StartPrefault(MemorySlot slot)
    {
        ulong used = 0;
        foreach (MemorySlot other in _slots)
        {
            used += other.PrefaultBytes;
        }

        slot.StartPrefault(MaxPrefaultBytes - Math.Min(used, MaxPrefaultBytes), context.Logger);
    }

    internal bool HandleRemMemReg(ReadOnlySpan<byte> payload)
    {
        // One descriptor is tolerated for compatibility with older frontends; it is closed unused.
        if (!context.RequireNegotiated(VhostUserProtocolFeatures.ConfigureMemSlots) || !context.ExpectSize(payload, 8 + RegionDescriptor.EncodedSize))
        {
            return false;
        }

        if (context.FdCount > 1)
        {
            return context.Refuse($"{context.FdCount} descriptors attached, at most 1 is tolerated");
        }

        var region = RegionDescriptor.Read(payload[8..]);
        int found = _slots.FindIndex(slot =>
            slot.Region.Start.Value == region.GuestAddress && slot.Region.Size == region.Size && slot.UserAddress == region.UserAddress);
        if (found < 0)
        {
            return context.Refuse($"region {region} is not in the memory table");
        }

        MemorySlot removed = _slots[found];
        List<MemorySlot> remaining = [.. _slots];
        remaining.RemoveAt(found);
        GuestMemory? memory = null;
        if (remaining.Count > 0 && !TryBuildMemory(remaining, out memory))
        {
            return false;
        }

        _slots.RemoveAt(found);
        Install(memory);
        removed.Dispose();
        return true;
    }

    private bool TryMapRegion(RegionDescriptor region, SafeFileDescriptor fd, [NotNullWhen(true)] out MemorySlot? slot)
    {
        slot = null;
        if (region.Size == 0)
        {
            return context.Refuse($"region {region} is empty");
        }

        if (region.GuestAddress + (region.Size - 1) < region.GuestAddress)
        {
            return context.Refuse($"region {region} overflows the guest physical address space");
        }

        if (region.UserAddress + (region.Size - 1) < region.UserAddress)
        {
            return context.Refuse($"region {region} overflows the frontend address space");
        }

        ulong end = region.MmapOffset + region.Size;
        if (end < region.Size || end > long.MaxValue)
        {
            return context.Refuse($"region {region} mmap offset plus size overflows");
        }

        int errno = Descriptors.Stat(fd.Fd, out ulong fileSize, out ushort fileType);
        if (errno != 0)
        {
            return context.Refuse($"region {region} descriptor cannot be inspected (errno {errno})");
        }

        if (fileType != Interop.Sys.SIfReg)
        {
            return context.Refuse($"region {region} descriptor is not a regular (memfd or shared memory) file (type 0x{fileType:x})");
        }

        if (fileSize < end)
        {
            // Mapping past the end of the file would raise SIGBUS on first access.
            return context.Refuse($"region {region} needs 0x{end:x} bytes but the file has only 0x{fileSize:x}");
        }

        if (!_unsealedWarned && !IsSealedAgainstShrinking(fd.Fd))
        {
            _unsealedWarned = true;
            Log.UnsealedRegion(context.Logger, region.ToString());
        }

        GuestRegion mapped;
        try
        {
            mapped = GuestRegion.MapFile(new GuestAddress(region.GuestAddress), region.Size, fd.Fd, region.MmapOffset);
        }
        catch (Exception exception) when (exception is IOException or ArgumentException)
        {
            return context.Refuse($"region {region} cannot be mapped: {exception.Message}");
        }

        slot = new MemorySlot(mapped, region.UserAddress);
        return true;
    }

    /// <summary>Whether the file behind a region cannot shrink: only then can no frontend make a mapped page vanish.</summary>
    internal static bool IsSealedAgainstShrinking(int fd)
    {
        int seals = Interop.Sys.Fcntl(fd, Interop.Sys.FGetSeals, 0);
        return seals >= 0 && (seals & Interop.Sys.FSealShrink) != 0;
    }

    private bool TryBuildMemory(List<MemorySlot> slots, [NotNullWhen(true)] out GuestMemory? memory)
    {
        memory = null;
        for (int i = 0; i < slots.Count; i++)
        {
            for (int j = i + 1; j < slots.Count; j++)
            {
                if (slots[i].UserAddress <= slots[j].LastUserAddress && slots[j].UserAddress <= slots[i].LastUserAddress)
                {
                    return context.Refuse($"regions {slots[i].Region} and {slots[j].Region} overlap in the frontend address space");
                }
            }
        }

        var regions = new GuestRegion[slots.Count];
        for (int i = 0; i < regions.Length; i++)
        {
            regions[i] = slots[i].Region;
        }

        try
        {
            memory = GuestMemory.Create(regions);
            return true;
        }
        catch (ArgumentException exception)
        {
            return context.Refuse(exception.Message);
        }
    }

    /// <summary>Makes <paramref name="memory"/> current, hands it to the backend, and drops this connection's reference to the previous table.</summary>
    private void Install(GuestMemory? memory)
    {
        GuestMemory? old = _memory;
        _memory = memory;
        try
        {
            backend.SetMemory(memory);
        }
        finally
        {
            old?.Dispose();
        }
    }

    internal bool TryTranslate(uint index, string part, ulong userAddress, ulong alignment, out GuestAddress guestAddress)
    {
        guestAddress = default;
        if ((userAddress & (alignment - 1)) != 0)
        {
            return context.Refuse($"queue {index} {part} address 0x{userAddress:x} is not {alignment}-byte aligned");
        }

        foreach (MemorySlot slot in _slots)
        {
            if (slot.TryTranslate(userAddress, out guestAddress))
            {
                // The virtio alignment rules are about guest physical addresses: a region whose frontend and
                // guest addresses differ in their low bits turns an aligned frontend address into a misaligned ring.
                return guestAddress.IsAligned(alignment)
                    || context.Refuse($"queue {index} {part} address 0x{userAddress:x} translates to guest address {guestAddress}, which is not {alignment}-byte aligned");
            }
        }

        return context.Refuse($"queue {index} {part} address 0x{userAddress:x} is not in the memory table");
    }
}
