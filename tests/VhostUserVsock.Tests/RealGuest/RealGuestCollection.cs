namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// The real-guest tests run one at a time and after every parallel test: a TCG guest takes a
/// whole host core, and the throughput they report must not compete with other tests.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RealGuestCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "RealGuest";
}
