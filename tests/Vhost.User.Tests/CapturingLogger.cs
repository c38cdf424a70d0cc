using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Vhost.User.Tests;

/// <summary>Keeps every log line, so tests can check that a refusal was explained.</summary>
internal sealed class CapturingLogger : ILogger
{
    public ConcurrentQueue<(LogLevel Level, string Message)> Lines { get; } = new();

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        Lines.Enqueue((logLevel, formatter(state, exception) + (exception is null ? string.Empty : " " + exception.Message)));
    }

    public bool Contains(string fragment) => Lines.Any(line => line.Message.Contains(fragment, StringComparison.Ordinal));

    public string Dump() => string.Join(Environment.NewLine, Lines.Select(line => $"{line.Level}: {line.Message}"));
}
