using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using VhostUserVsock.Cli;
using VhostUserVsock.Systemd;

namespace VhostUserVsock.Hosting;

/// <summary>
/// The daemon's <see cref="IHostLifetime"/> (in place of the console and systemd lifetimes, with the daemon's own
/// readiness contract): on the host's "started", sends <c>READY=1</c> to the service manager, which is only once
/// every VM's sockets accept (<see cref="VmService"/> starts then) and never after a failure; on "stopping",
/// <c>STOPPING=1</c>; and turns SIGINT/SIGTERM into a graceful stop (<see cref="ShutdownSignals"/>). Owns the signal
/// registrations; must never block the host or throw from a notification.
/// </summary>
public sealed partial class DaemonLifetime : IHostLifetime, IDisposable
{
    private readonly IHostApplicationLifetime _lifetime;
    private readonly DaemonRun _run;
    private readonly SystemdNotifier? _notifier;
    private readonly bool _handleSignals;
    private readonly ILogger _logger;
    private readonly List<IDisposable> _registrations = [];

    /// <summary>Creates the lifetime.</summary>
    /// <param name="lifetime">The host's application lifetime.</param>
    /// <param name="run">The daemon run's shared state.</param>
    /// <param name="notifier">The service manager's notification socket, or <see langword="null"/> when none.</param>
    /// <param name="handleSignals">Whether SIGINT and SIGTERM stop the daemon.</param>
    /// <param name="logger">Where to log.</param>
    public DaemonLifetime(IHostApplicationLifetime lifetime, DaemonRun run, SystemdNotifier? notifier, bool handleSignals, ILogger<DaemonLifetime> logger)
    {
        ArgumentNullException.ThrowIfNull(lifetime);
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(logger);
        _lifetime = lifetime;
        _run = run;
        _notifier = notifier;
        _handleSignals = handleSignals;
        _logger = logger;
    }

    /// <inheritdoc/>
    public Task WaitForStartAsync(CancellationToken cancellationToken)
    {
        _registrations.Add(_lifetime.ApplicationStarted.Register(OnStarted));
        _registrations.Add(_lifetime.ApplicationStopping.Register(OnStopping));
        if (_handleSignals)
        {
            _registrations.Add(ShutdownSignals.Register(_lifetime.StopApplication, _logger));
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (IDisposable registration in _registrations)
        {
            registration.Dispose();
        }

        _registrations.Clear();
    }

    private void OnStarted()
    {
        if (_run.AllListening && !_lifetime.ApplicationStopping.IsCancellationRequested)
        {
            _notifier?.Notify($"READY=1\nSTATUS=serving {_run.Config.Vms.Length} VM(s)");
        }
    }

    private void OnStopping()
    {
        LogStopping(_logger, _run.Config.Vms.Length);
        _notifier?.Notify("STOPPING=1\nSTATUS=stopping");
    }

    [LoggerMessage(EventId = 11, Level = LogLevel.Information, Message = "Stopping {Count} VM(s)")]
    private static partial void LogStopping(ILogger logger, int count);
}
