using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace VhostUserVsock.Cli;

/// <summary>
/// The daemon's logging: Microsoft.Extensions.Logging's console logger, one line per message, all on stderr.
/// Under systemd the Generic Host's <c>AddSystemd</c> switches the format to journald's (priority prefixes, no
/// timestamps: the journal adds its own).
/// </summary>
public static class ConsoleLogging
{
    /// <summary>Configures the logging of the daemon's host.</summary>
    /// <param name="builder">The host's logging builder.</param>
    /// <param name="level">The least severe level written; <see cref="LogLevel.None"/> writes nothing.</param>
    public static void Configure(ILoggingBuilder builder, LogLevel level)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.ClearProviders()
            .SetMinimumLevel(level)
            .AddConsole(options => options.LogToStandardErrorThreshold = LogLevel.Trace)
            .AddSimpleConsole(options =>
            {
                options.SingleLine = true;
                options.TimestampFormat = "HH:mm:ss.fff ";
                options.IncludeScopes = false;
            });
    }

    /// <summary>Creates a logger factory configured as <see cref="Configure"/> does (for code run outside the host).</summary>
    /// <param name="level">The least severe level written.</param>
    /// <returns>The factory; dispose it to flush.</returns>
    public static ILoggerFactory Create(LogLevel level) => LoggerFactory.Create(builder => Configure(builder, level));
}
