namespace Virtio.Vsock.Device;

/// <summary>
/// Sees every packet that crosses a device (<see cref="VsockDevice.PacketTap"/>): each packet the device takes
/// from the TX queue (after parsing) and each it writes into an RX buffer (after filling).
/// </summary>
/// <remarks>
/// Called on the device loop thread, on the hot path: an implementation must return quickly, never block,
/// never throw and never keep a reference to the packet (it is reused for the next one). It copies what it
/// needs or drops the packet.
/// </remarks>
public interface IVsockPacketTap
{
    /// <summary>One packet crossed the device.</summary>
    /// <param name="packet">The packet; valid only during the call.</param>
    /// <param name="fromGuest"><see langword="true"/> for a TX packet (guest to device), <see langword="false"/> for RX.</param>
    void OnPacket(VsockPacket packet, bool fromGuest);
}
