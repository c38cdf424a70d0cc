namespace VsockLoad.Guest;

/// <summary>Packet counts the guest driver keeps (plain fields; one thread).</summary>
internal sealed class GuestCounters
{
    /// <summary>CREDIT_REQUEST packets the device sent.</summary>
    public long DeviceCreditRequests;

    /// <summary>CREDIT_UPDATE packets the device sent.</summary>
    public long DeviceCreditUpdates;

    /// <summary>RX packets (all ops).</summary>
    public long RxPackets;

    /// <summary>TX packets (all ops).</summary>
    public long TxPackets;

    /// <summary>CREDIT_REQUEST packets the guest sent (after a credit stall nobody ended).</summary>
    public long GuestCreditRequests;

    /// <summary>CREDIT_UPDATE packets the guest sent.</summary>
    public long GuestCreditUpdates;

    /// <summary>Kicks the guest wrote.</summary>
    public long Kicks;

    /// <summary>Packets for connections already closed (a legal race, not counted as a violation).</summary>
    public long LatePackets;
}
