namespace VhostUserVsock.Tests.Guest;

/// <summary>The Debian suites tests/guest/build-guest.sh builds guests from.</summary>
public static class GuestSuite
{
    /// <summary>Debian 12, Linux 6.1 (header and payload in separate descriptors on TX).</summary>
    public const string Bookworm = "bookworm";

    /// <summary>Debian 13, Linux 6.12 (guest->host payloads over several descriptors).</summary>
    public const string Trixie = "trixie";

    /// <summary>Both suites the test setup builds, oldest first.</summary>
    public static IReadOnlyList<string> All { get; } = [Bookworm, Trixie];
}
