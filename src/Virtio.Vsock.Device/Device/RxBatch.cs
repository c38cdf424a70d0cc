namespace Virtio.Vsock.Device;

/// <summary>
/// More RX buffers for one burst of host data: while a stream connection reads from its host socket, it asks the
/// device for the guest's next RX buffers, so one <c>recvmsg</c> fills several of them (a 64 KiB host write lands
/// in sixteen 4 KiB buffers with one system call instead of sixteen).
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> a fixed array of reusable <see cref="VsockPacket"/>s (the extra buffers, parsed in place) and
/// their used lengths; it allocates nothing after construction. <b>Must never:</b> hand out a buffer the device has
/// not popped and parsed, or keep one it did not fill: the device returns every unfilled extra buffer to the ring
/// (they are the last ones popped, so rewinding the next-available index gives them back in order).</para>
/// <para>Runs on the device loop only.</para>
/// </remarks>
internal sealed class RxBatch
{
    /// <summary>The most extra buffers one burst takes (with the first: 16 x 4 KiB = one 64 KiB write).</summary>
    public const int MaxExtra = 15;

    private readonly Func<VsockPacket, bool> _take;
    private readonly VsockPacket[] _pool = new VsockPacket[MaxExtra];
    private readonly VsockPacket[] _packets = new VsockPacket[MaxExtra + 1];

    /// <summary>Creates the batch over the device's pop-and-parse function.</summary>
    /// <param name="take">Pops the guest's next RX chain and parses it into the given packet; <see langword="false"/>
    /// when none is available (or the next one is bad: it stays in the ring for the normal path to report).</param>
    public RxBatch(Func<VsockPacket, bool> take)
    {
        _take = take;
        for (int i = 0; i < _pool.Length; i++)
        {
            _pool[i] = new VsockPacket();
        }
    }

    /// <summary>The used length (header + payload) of each filled extra buffer (index 0 is the first extra).</summary>
    public uint[] ExtraLengths { get; } = new uint[MaxExtra];

    /// <summary>How many extra buffers were taken from the ring in this burst.</summary>
    public int Taken { get; private set; }

    /// <summary>How many of the taken extra buffers the producer filled (a prefix).</summary>
    public int Filled { get; set; }

    /// <summary>The first buffer and the extras taken so far, in ring order.</summary>
    public ReadOnlySpan<VsockPacket> Packets => _packets.AsSpan(0, 1 + Taken);

    /// <summary>The <paramref name="index"/>th extra buffer taken in this burst.</summary>
    public VsockPacket Extra(int index) => _packets[1 + index];

    /// <summary>Starts a burst whose first buffer is <paramref name="first"/> (on the device, before each fill).</summary>
    public void Begin(VsockPacket first)
    {
        _packets[0] = first;
        Taken = 0;
        Filled = 0;
    }

    /// <summary>Takes one more RX buffer from the guest, if there is one and the burst has room.</summary>
    /// <returns>Whether a buffer was taken (it is then the last of <see cref="Packets"/>).</returns>
    public bool TryTake()
    {
        if (Taken == MaxExtra || !_take(_pool[Taken]))
        {
            return false;
        }

        _packets[1 + Taken] = _pool[Taken];
        Taken++;
        return true;
    }
}
