using CsCheck;

namespace Virtio.Memory.Tests;

/// <summary>Region lookup agrees with a linear model for any layout of up to 32 regions.</summary>
public sealed class RegionLookupPropertyTests
{
    [Fact]
    public void Lookup_and_range_checks_match_a_linear_model()
    {
        Gen<(ulong Gap, ulong Size)[]> layouts =
            Gen.Select(Gen.ULong[0, 3], Gen.ULong[1, 4]).Select((g, s) => (Gap: g * 0x1000, Size: s * 0x1000)).Array[1, 32];

        Gen.Select(layouts, Gen.ULong[0, 0x100000], Gen.ULong[0, 0x6000]).Sample((layout, probe, length) =>
        {
            var regions = new List<GuestRegion>();
            ulong cursor = 0;
            foreach ((ulong gap, ulong size) in layout)
            {
                cursor += gap;
                regions.Add(GuestRegion.CreateAnonymous(new GuestAddress(cursor), size));
                cursor += size;
            }

            using GuestMemory memory = GuestMemory.Create(regions.ToArray());
            regions.ForEach(r => r.Dispose());

            bool Inside(ulong a) => memory.Regions.Any(r => r.Contains(new GuestAddress(a)));
            bool startInside = Inside(probe);
            Assert.Equal(startInside, memory.Contains(new GuestAddress(probe)));

            MemoryError error = memory.CheckRange(new GuestAddress(probe), length);
            if (length == 0)
            {
                Assert.Equal(MemoryError.None, error);
            }
            else if (!startInside)
            {
                Assert.Equal(MemoryError.InvalidAddress, error);
            }
            else
            {
                // Every page boundary in the range must be inside memory for the whole range to be.
                bool all = Inside(probe + length - 1);
                for (ulong page = (probe & ~0xffful) + 0x1000; page < probe + length; page += 0x1000)
                {
                    all &= Inside(page);
                }

                Assert.Equal(all ? MemoryError.None : MemoryError.RangeOutsideMemory, error);
            }
        }, iter: 300);
    }
}
