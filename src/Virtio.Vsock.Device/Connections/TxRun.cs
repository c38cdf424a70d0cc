namespace Virtio.Vsock.Device;

/// <summary>
/// A run of consecutive guest data packets (OP_RW) of one stream connection, held back within one TX batch so that
/// their payloads reach the host with one gathering write: a guest streaming 4 KiB writes costs one <c>sendmsg</c>
/// per run of up to <see cref="MaxPackets"/> packets instead of one per packet (and the host reader wakes once).
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> the packets of the run (guest TX chains parsed in place, which the device has not yet returned
/// to the guest: their used elements are published only after the run is written) and a fixed pool of spare
/// <see cref="VsockPacket"/>s that it swaps in for the device's packet each time it keeps one. It allocates nothing
/// after construction.</para>
/// <para><b>Must never:</b> outlive the TX batch (the device calls <see cref="VsockMuxer.FlushTxRun"/> before it
/// publishes used elements, so no held packet's guest memory goes back to the guest unwritten), reorder a
/// connection's packets (any packet that does not extend the run writes the run first), or hold packets of more
/// than one connection.</para>
/// <para>Runs on the device loop only.</para>
/// </remarks>
internal sealed class TxRun
{
    /// <summary>The most packets in one run (with 4 KiB packets: 64 KiB per write).</summary>
    public const int MaxPackets = 16;

    private readonly VsockPacket[] _packets = new VsockPacket[MaxPackets];
    private readonly VsockPacket[] _spares = new VsockPacket[MaxPackets];
    private int _spareCount;

    /// <summary>Creates the run with its spare packets.</summary>
    public TxRun()
    {
        for (int i = 0; i < _spares.Length; i++)
        {
            _spares[i] = new VsockPacket();
        }

        _spareCount = _spares.Length;
    }

    /// <summary>The connection whose packets the run holds, or <see langword="null"/> when it is empty.</summary>
    public VsockConnection? Owner { get; private set; }

    /// <summary>The packets held, in guest order.</summary>
    public ReadOnlySpan<VsockPacket> Packets => _packets.AsSpan(0, Count);

    /// <summary>How many packets are held.</summary>
    public int Count { get; private set; }

    /// <summary>The payload bytes held.</summary>
    public int Bytes { get; private set; }

    /// <summary>Whether <paramref name="connection"/> may add a packet: the run is empty, or it is the owner's and has room.</summary>
    /// <param name="connection">The connection.</param>
    /// <returns>Whether <see cref="Keep"/> may be called for it.</returns>
    public bool CanJoin(VsockConnection connection) => Count == 0 || (Owner == connection && Count < MaxPackets);

    /// <summary>Keeps <paramref name="packet"/> (the device's current TX packet) and gives the device a spare in its place.</summary>
    /// <param name="connection">The owner (see <see cref="CanJoin"/>).</param>
    /// <param name="packet">The device's TX packet; replaced by a spare packet the device parses the next chain into.</param>
    public void Keep(VsockConnection connection, ref VsockPacket packet)
    {
        Owner = connection;
        _packets[Count++] = packet;
        Bytes += (int)packet.Len;
        packet = _spares[--_spareCount];
    }

    /// <summary>Empties the run: its packets become spares again (called after the owner wrote or dropped them).</summary>
    public void Clear()
    {
        for (int i = 0; i < Count; i++)
        {
            _spares[_spareCount++] = _packets[i];
            _packets[i] = null!;
        }

        Count = 0;
        Bytes = 0;
        Owner = null;
    }
}
