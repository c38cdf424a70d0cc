namespace Virtio.Vsock;

/// <summary>Well-known context ids (CIDs) and the rule for which CIDs a guest may have.</summary>
public static class VsockCid
{
    /// <summary>VMADDR_CID_HYPERVISOR (0): reserved.</summary>
    public const ulong Hypervisor = 0;

    /// <summary>VMADDR_CID_LOCAL (1): local loopback, reserved.</summary>
    public const ulong Local = 1;

    /// <summary>VMADDR_CID_HOST (2): the host.</summary>
    public const ulong Host = 2;

    /// <summary>VMADDR_CID_ANY as a 32-bit value (0xffffffff): reserved.</summary>
    public const ulong Any = 0xffff_ffff;

    /// <summary>The first CID a guest may use.</summary>
    public const ulong FirstGuest = 3;

    /// <summary>Whether <paramref name="cid"/> may be given to a guest: not 0, 1, 2, 0xffffffff, and not above 32 bits.</summary>
    /// <param name="cid">A candidate guest CID.</param>
    /// <returns><see langword="true"/> when usable.</returns>
    public static bool IsValidGuestCid(ulong cid) => cid >= FirstGuest && cid < Any;
}
