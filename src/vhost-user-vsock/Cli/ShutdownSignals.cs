using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace VhostUserVsock.Cli;

/// <summary>
/// Turns SIGINT and SIGTERM into a graceful stop: the first one asks the daemon to stop (and
/// keeps the process alive so the VMs can stop and the sockets be removed); a second one
/// terminates the process at once, as without a handler.
/// </summary>
public sealed partial class ShutdownSignals : IDisposable
{
    private readonly Action _stop;
    private readonly ILogger _logger;
    private readonly PosixSignalRegistration[] _registrations;
    private int _received;

    private ShutdownSignals(Action stop, ILogger logger)
    {
        _stop = stop;
        _logger = logger;
        _registrations =
        [
            PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle),
        ];
    }

    /// <summary>Starts handling SIGINT and SIGTERM.</summary>
    /// <param name="stop">Called on the first signal (the host's <c>StopApplication</c>).</param>
    /// <param name="logger">Where to log the signal.</param>
    /// <returns>The registration; dispose it to restore the default handling.</returns>
    public static ShutdownSignals Register(Action stop, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(stop);
        ArgumentNullException.ThrowIfNull(logger);
        return new ShutdownSignals(stop, logger);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (PosixSignalRegistration registration in _registrations)
        {
            registration.Dispose();
        }
    }

    private void Handle(PosixSignalContext context)
    {
        if (Interlocked.Increment(ref _received) > 1)
        {
            LogForced(_logger, context.Signal);
            context.Cancel = false;
            return;
        }

        context.Cancel = true;
        LogStopping(_logger, context.Signal);
        _stop();
    }

    [LoggerMessage(EventId = 20, Level = LogLevel.Information, Message = "{Signal} received: stopping (send it again to exit at once)")]
    private static partial void LogStopping(ILogger logger, PosixSignal signal);

    [LoggerMessage(EventId = 21, Level = LogLevel.Warning, Message = "{Signal} received again: exiting at once")]
    private static partial void LogForced(ILogger logger, PosixSignal signal);
}
