namespace VhostUserVsock.Tests.RealGuest;

/// <summary>A scenario check failed.</summary>
public sealed class ScenarioFailedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ScenarioFailedException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public ScenarioFailedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public ScenarioFailedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
