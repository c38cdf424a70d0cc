using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using VhostUserVsock.Cli;
using VhostUserVsock.Configuration;

namespace VhostUserVsock.Hosting;

/// <summary>
/// One VM as a hosted service of the daemon's Generic Host. Start: removes stale socket files at the VM's paths,
/// runs the VM on the <see cref="IVmServer"/> and completes once both of its sockets accept (so the host's
/// "started", and with it <c>READY=1</c>, means every VM listens). A VM that fails or returns unasked stops the
/// whole daemon (exit code 1). Stop: cancels the VM, waits for it until the host's shutdown timeout, then removes
/// the socket files the daemon created. Must never remove a file that is not a socket, nor a socket systemd passed
/// (the probe hides those).
/// </summary>
public sealed partial class VmService : IHostedService
{
    private readonly VmConfig _vm;
    private readonly IVmServer _server;
    private readonly ILoggerFactory _logs;
    private readonly ILogger _logger;
    private readonly IFileSystemProbe _probe;
    private readonly DaemonRun _run;
    private readonly TimeSpan _shutdownTimeout;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _running;
    private int _listeningReported;

    /// <summary>Creates the service of one VM.</summary>
    /// <param name="vm">The VM.</param>
    /// <param name="server">Serves it.</param>
    /// <param name="logs">Where to log.</param>
    /// <param name="probe">How socket paths are examined (hides the sockets systemd passed).</param>
    /// <param name="run">The daemon run's shared state.</param>
    /// <param name="shutdownTimeout">How long the VM gets to stop (the host's shutdown timeout; for the log line).</param>
    public VmService(VmConfig vm, IVmServer server, ILoggerFactory logs, IFileSystemProbe probe, DaemonRun run, TimeSpan shutdownTimeout)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(logs);
        ArgumentNullException.ThrowIfNull(probe);
        ArgumentNullException.ThrowIfNull(run);
        _vm = vm;
        _server = server;
        _logs = logs;
        _logger = logs.CreateLogger<VmService>();
        _probe = probe;
        _run = run;
        _shutdownTimeout = shutdownTimeout;
    }

    /// <summary>Whether the VM stopped when asked (false while it runs, or when it outlived the shutdown timeout).</summary>
    public bool Stopped => _running is null || _running.IsCompleted;

    /// <inheritdoc/>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        RemoveSocket(_vm.SocketPath, stale: true);
        RemoveSocket(_vm.UdsPath, stale: true);
        LogServing(_logger, _vm.GuestCid, _vm.SocketPath, _vm.UdsPath, _vm.TxBufferSize, _vm.QueueSize, string.Join('+', _vm.Groups));
        CancellationToken token = _stop.Token;
        _running = Task.Run(() => RunAsync(token), CancellationToken.None);

        // Started once the sockets accept, or once the VM failed (it has stopped the daemon then), or when the
        // daemon is asked to stop while starting (the host cancels the start then; StopAsync follows).
        try
        {
            await Task.WhenAny(_listening.Task, _running).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping before this VM listened.
        }
    }

    /// <inheritdoc/>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_running is not null)
        {
            try
            {
                await _running.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                _run.StopTimedOut(_shutdownTimeout);
            }
        }

        RemoveSocket(_vm.SocketPath, stale: false);
        RemoveSocket(_vm.UdsPath, stale: false);
    }

    private async Task RunAsync(CancellationToken token)
    {
        try
        {
            await _server.RunAsync(_vm, _logs, OnListening, token).ConfigureAwait(false);
            if (!token.IsCancellationRequested)
            {
                LogEndedEarly(_logger, _vm.GuestCid);
                _run.Fail();
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // Stopped as asked.
        }
        catch (Exception ex)
        {
            LogVmFailed(_logger, ex, _vm.GuestCid);
            _run.Fail();
        }
    }

    private void OnListening()
    {
        // Counted before the start completes, so that the host's "started" finds every VM counted.
        if (Interlocked.Exchange(ref _listeningReported, 1) == 0)
        {
            _run.Listening(_vm.GuestCid);
            _listening.TrySetResult();
        }
    }

    private void RemoveSocket(string path, bool stale)
    {
        try
        {
            if (SocketFiles.RemoveIfSocket(path, _probe))
            {
                if (stale)
                {
                    LogRemovedStale(_logger, _vm.GuestCid, path);
                }
                else
                {
                    LogRemoved(_logger, _vm.GuestCid, path);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogRemoveFailed(_logger, _vm.GuestCid, path, ex.Message);
        }
    }

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "VM {GuestCid}: vhost-user socket {SocketPath}; host side {UdsPath} (guest connections to host port P go to {UdsPath}_P); tx-buffer-size {TxBufferSize}, queue-size {QueueSize}, groups {Groups}")]
    private static partial void LogServing(ILogger logger, ulong guestCid, string socketPath, string udsPath, uint txBufferSize, uint queueSize, string groups);

    [LoggerMessage(EventId = 14, Level = LogLevel.Error, Message = "VM {GuestCid}: its server returned without being asked to stop; stopping the daemon")]
    private static partial void LogEndedEarly(ILogger logger, ulong guestCid);

    [LoggerMessage(EventId = 15, Level = LogLevel.Error, Message = "VM {GuestCid}: failed; stopping the daemon")]
    private static partial void LogVmFailed(ILogger logger, Exception exception, ulong guestCid);

    [LoggerMessage(EventId = 17, Level = LogLevel.Information, Message = "VM {GuestCid}: removed stale socket {Path}")]
    private static partial void LogRemovedStale(ILogger logger, ulong guestCid, string path);

    [LoggerMessage(EventId = 18, Level = LogLevel.Debug, Message = "VM {GuestCid}: removed socket {Path}")]
    private static partial void LogRemoved(ILogger logger, ulong guestCid, string path);

    [LoggerMessage(EventId = 19, Level = LogLevel.Warning, Message = "VM {GuestCid}: cannot remove socket {Path}: {Reason}")]
    private static partial void LogRemoveFailed(ILogger logger, ulong guestCid, string path, string reason);
}
