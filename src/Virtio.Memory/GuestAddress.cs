using System.Globalization;

namespace Virtio.Memory;

/// <summary>
/// An address in guest physical memory: a plain 64-bit value with checked arithmetic.
/// </summary>
/// <remarks>
/// Guest addresses come from a guest driver and are therefore untrusted. Arithmetic on them never
/// wraps silently: <see cref="TryAdd"/> reports an overflow as a failure, so that a descriptor such
/// as <c>{ addr = 0xffff_ffff_ffff_f000, len = 0x2000 }</c> is rejected instead of aliasing low memory.
/// </remarks>
/// <param name="Value">The raw 64-bit guest physical address.</param>
public readonly record struct GuestAddress(ulong Value) : IComparable<GuestAddress>
{
    /// <summary>Adds <paramref name="offset"/> to this address.</summary>
    /// <param name="offset">The number of bytes to add.</param>
    /// <param name="result">The sum, or the default address when the sum overflows 64 bits.</param>
    /// <returns><see langword="true"/> when the sum fits in 64 bits.</returns>
    public bool TryAdd(ulong offset, out GuestAddress result)
    {
        ulong sum = unchecked(Value + offset);
        if (sum < Value)
        {
            result = default;
            return false;
        }

        result = new GuestAddress(sum);
        return true;
    }

    /// <summary>Adds <paramref name="offset"/> to this address, throwing on overflow.</summary>
    /// <param name="offset">The number of bytes to add.</param>
    /// <returns>The sum.</returns>
    /// <exception cref="OverflowException">The sum does not fit in 64 bits.</exception>
    /// <remarks>For configuration code at the edges; hot paths use <see cref="TryAdd"/>.</remarks>
    public GuestAddress CheckedAdd(ulong offset) =>
        TryAdd(offset, out GuestAddress result)
            ? result
            : throw new OverflowException($"{this} + 0x{offset:x} overflows the 64-bit guest address space.");

    /// <summary>Whether the address is a multiple of <paramref name="alignment"/> (a power of two).</summary>
    /// <param name="alignment">A power of two.</param>
    /// <returns><see langword="true"/> when aligned.</returns>
    public bool IsAligned(ulong alignment) => (Value & (alignment - 1)) == 0;

    /// <inheritdoc/>
    public int CompareTo(GuestAddress other) => Value.CompareTo(other.Value);

    /// <summary>Compares two addresses.</summary>
    /// <param name="left">The first address.</param>
    /// <param name="right">The second address.</param>
    /// <returns>Whether <paramref name="left"/> is below <paramref name="right"/>.</returns>
    public static bool operator <(GuestAddress left, GuestAddress right) => left.Value < right.Value;

    /// <summary>Compares two addresses.</summary>
    /// <param name="left">The first address.</param>
    /// <param name="right">The second address.</param>
    /// <returns>Whether <paramref name="left"/> is above <paramref name="right"/>.</returns>
    public static bool operator >(GuestAddress left, GuestAddress right) => left.Value > right.Value;

    /// <summary>Compares two addresses.</summary>
    /// <param name="left">The first address.</param>
    /// <param name="right">The second address.</param>
    /// <returns>Whether <paramref name="left"/> is not above <paramref name="right"/>.</returns>
    public static bool operator <=(GuestAddress left, GuestAddress right) => left.Value <= right.Value;

    /// <summary>Compares two addresses.</summary>
    /// <param name="left">The first address.</param>
    /// <param name="right">The second address.</param>
    /// <returns>Whether <paramref name="left"/> is not below <paramref name="right"/>.</returns>
    public static bool operator >=(GuestAddress left, GuestAddress right) => left.Value >= right.Value;

    /// <summary>The address in hexadecimal, e.g. <c>0x100000</c>.</summary>
    /// <returns>The formatted address.</returns>
    public override string ToString() => "0x" + Value.ToString("x", CultureInfo.InvariantCulture);
}
