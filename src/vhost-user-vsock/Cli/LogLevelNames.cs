using Microsoft.Extensions.Logging;
using VhostUserVsock.Configuration;

namespace VhostUserVsock.Cli;

/// <summary>The names <c>--log-level</c> takes: trace, debug, information, warning, error, critical, none (case-insensitive; info, warn and off also work).</summary>
public static class LogLevelNames
{
    /// <summary>The documented names, for help and messages.</summary>
    public const string Documented = "trace|debug|information|warning|error|critical|none";

    /// <summary>Parses a level name.</summary>
    /// <param name="text">The name.</param>
    /// <returns>The level.</returns>
    /// <exception cref="ConfigurationException">The name is not a level.</exception>
    public static LogLevel Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.Trim().ToLowerInvariant() switch
        {
            "trace" => LogLevel.Trace,
            "debug" => LogLevel.Debug,
            "information" or "info" => LogLevel.Information,
            "warning" or "warn" => LogLevel.Warning,
            "error" => LogLevel.Error,
            "critical" => LogLevel.Critical,
            "none" or "off" => LogLevel.None,
            _ => throw new ConfigurationException(
                $"--log-level '{ConfigText.Printable(text)}' is not a level; use one of {Documented}"),
        };
    }
}
