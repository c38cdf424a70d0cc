namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// One real-guest scenario: commands for the guest's /init (run in order with the other
/// scenarios' commands, in one boot) and the host side that drives and checks it.
/// </summary>
public sealed class GuestScenario
{
    /// <summary>Unique name; also the prefix of its guest command names.</summary>
    public required string Name { get; init; }

    /// <summary>What it proves, for the report.</summary>
    public string Description { get; init; } = "";

    /// <summary>The guest commands (see <see cref="Guest.GuestCommand"/>).</summary>
    public IReadOnlyList<Guest.GuestCommand> Commands { get; init; } = [];

    /// <summary>Runs before QEMU starts: host listeners the guest will connect to.</summary>
    public Action<ScenarioContext>? Prepare { get; init; }

    /// <summary>The host side, started when the guest is ready; throws on failure.</summary>
    public required Func<ScenarioContext, Task> Host { get; init; }

    /// <summary>
    /// Limit for the host side, counted from the scenario's turn in the guest (when the command before
    /// its first one ended; GUEST-READY for the first scenario).
    /// </summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(90);
}
