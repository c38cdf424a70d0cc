namespace VhostUserVsock.Configuration;

/// <summary>
/// A command line, configuration file or configuration that cannot be used. The message is one
/// line that says what is wrong and where, suitable to print as is before exiting.
/// </summary>
public sealed class ConfigurationException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong; joined into one line if it has several.</param>
    public ConfigurationException(string message)
        : base(ConfigText.OneLine(message))
    {
    }

    /// <summary>Creates the exception with the error that caused it.</summary>
    /// <param name="message">What is wrong; joined into one line if it has several.</param>
    /// <param name="innerException">The underlying error.</param>
    public ConfigurationException(string message, Exception innerException)
        : base(ConfigText.OneLine(message), innerException)
    {
    }
}
