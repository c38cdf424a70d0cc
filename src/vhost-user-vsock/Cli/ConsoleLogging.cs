using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace VhostUserVsock.Cli;

/// <summary>The daemon's logging: Microsoft.Extensions.Logging's console logger, one line per message, all on stderr.</summary>
public static class ConsoleLogging
{
    /// <summary>Creates the logger factory.</summary>
    /// <param name="level">The least severe level written; <see cref="LogLevel.None"/> writes nothing.</param>
    /// <returns>The factory; dispose it to flush.</returns>
    public static ILoggerFactory Create(LogLevel level) => LoggerFactory.Create(builder => builder
        .SetMinimumLevel(level)
        .AddConsole(options => options.LogToStandardErrorThreshold = LogLevel.Trace)
        .AddSimpleConsole(options =>
        {
            options.SingleLine = true;
            options.TimestampFormat = "HH:mm:ss.fff ";
            options.IncludeScopes = false;
        }));
}
