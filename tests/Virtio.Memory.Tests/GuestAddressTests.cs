namespace Virtio.Memory.Tests;

public sealed class GuestAddressTests
{
    [Fact]
    public void TryAdd_reports_overflow_instead_of_wrapping()
    {
        var address = new GuestAddress(ulong.MaxValue - 0xff);
        Assert.True(address.TryAdd(0xff, out GuestAddress last));
        Assert.Equal(ulong.MaxValue, last.Value);
        Assert.False(address.TryAdd(0x100, out GuestAddress wrapped));
        Assert.Equal(default, wrapped);
        Assert.Throws<OverflowException>(() => address.CheckedAdd(0x100));
    }

    [Fact]
    public void Alignment_comparison_and_formatting()
    {
        var low = new GuestAddress(0x1000);
        var high = new GuestAddress(0x1010);
        Assert.True(low < high && high > low && low <= new GuestAddress(0x1000) && high >= new GuestAddress(0x1010));
        Assert.True(high.IsAligned(16));
        Assert.False(new GuestAddress(0x1002).IsAligned(4));
        Assert.Equal("0x1010", high.ToString());
    }
}
