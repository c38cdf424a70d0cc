using System.Collections.Concurrent;
using System.Diagnostics;

namespace VsockSoak;

/// <summary>
/// Catches what the device writes to <see cref="Trace"/> (faults it contained: an endpoint or loop action
/// that threw), so the report names them. Keeps a bounded number of messages.
/// </summary>
internal sealed class TraceCapture : TraceListener
{
    private const int MaxMessages = 20;

    private readonly ConcurrentQueue<string> _messages = new();
    private int _count;

    /// <summary>Messages written (all of them counted, the first few kept).</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>The first messages, each cut to a few lines.</summary>
    public IReadOnlyCollection<string> Messages => _messages.ToArray();

    /// <inheritdoc/>
    public override void Write(string? message) => Keep(message);

    /// <inheritdoc/>
    public override void WriteLine(string? message) => Keep(message);

    private void Keep(string? message)
    {
        if (string.IsNullOrEmpty(message) || message.EndsWith(": ", StringComparison.Ordinal))
        {
            // The listener's own "source: level: id: " prefix.
            return;
        }

        if (Interlocked.Increment(ref _count) <= MaxMessages)
        {
            string[] lines = message.Split('\n');
            _messages.Enqueue(string.Join(" | ", lines.Take(6)).Trim());
        }
    }
}
