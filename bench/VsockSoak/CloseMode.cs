namespace VsockSoak;

/// <summary>How a soak connection ends. The first two and the last are orderly: every byte must arrive.</summary>
internal enum CloseMode
{
    /// <summary>Both sides send and half-close; the guest closes first, then the host.</summary>
    OrderlyGuestFirst,

    /// <summary>Both sides send and half-close; the host closes first, then the guest.</summary>
    OrderlyHostFirst,

    /// <summary>Both sides send; the guest sends RST after receiving part of the host's data.</summary>
    GuestResetMidTransfer,

    /// <summary>Both sides send; the host closes its socket after receiving part of the guest's data.</summary>
    HostCloseMidTransfer,

    /// <summary>The host sends and half-closes; the guest reads it all, sends its own data and closes.</summary>
    HostHalfCloseThenGuestClose,
}

/// <summary>Facts about <see cref="CloseMode"/>.</summary>
internal static class CloseModes
{
    /// <summary>The number of modes.</summary>
    public const int Count = 5;

    /// <summary>Whether every byte must arrive in <paramref name="mode"/>.</summary>
    public static bool IsOrderly(CloseMode mode) => mode is CloseMode.OrderlyGuestFirst or CloseMode.OrderlyHostFirst or CloseMode.HostHalfCloseThenGuestClose;
}
