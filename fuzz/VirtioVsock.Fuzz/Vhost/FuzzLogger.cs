using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace VirtioVsock.Fuzz.Vhost;

/// <summary>
/// Formats every warning and error (so refusal messages run too) and keeps those that carry an exception:
/// the fuzz backend never throws, so an exception in the log is the connection's own fault.
/// </summary>
internal sealed class FuzzLogger : ILogger
{
    public ConcurrentQueue<string> Exceptions { get; } = new();

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        string message = formatter(state, exception);
        if (exception is not null)
        {
            Exceptions.Enqueue($"{message}: {exception}");
        }
    }
}
