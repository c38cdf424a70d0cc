using Microsoft.Extensions.Logging;
using VhostUserVsock.Configuration;

namespace VhostUserVsock.Cli;

/// <summary>
/// Runs every VM of a validated <see cref="DaemonConfig"/> on an <see cref="IVmServer"/>,
/// concurrently, until stopped: removes stale socket files, logs where each VM listens, starts
/// the VMs, and on stop (or when a VM fails) cancels them all, waits up to
/// <see cref="ShutdownTimeout"/> for them, and removes their socket files.
/// </summary>
public sealed partial class DaemonHost
{
    private readonly DaemonConfig _config;
    private readonly IVmServer _server;
    private readonly ILoggerFactory _logs;
    private readonly ILogger _logger;
    private readonly IFileSystemProbe _probe;
    private int _failed;
    private int _notListening;

    /// <summary>Creates the host.</summary>
    /// <param name="config">A validated configuration.</param>
    /// <param name="server">Serves each VM.</param>
    /// <param name="logs">Where to log.</param>
    /// <param name="probe">How to examine socket paths; <see cref="UnixFileSystemProbe.Instance"/> when <see langword="null"/>.</param>
    public DaemonHost(DaemonConfig config, IVmServer server, ILoggerFactory logs, IFileSystemProbe? probe = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(logs);
        _config = config;
        _server = server;
        _logs = logs;
        _logger = logs.CreateLogger<DaemonHost>();
        _probe = probe ?? UnixFileSystemProbe.Instance;
    }

    /// <summary>How long VMs get to stop once asked before the daemon gives up on them (default 10 s).</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Receives the daemon's service-manager notifications (systemd <c>sd_notify</c> lines): <c>READY=1</c> once
    /// every VM's sockets listen, <c>STOPPING=1</c> when the stop begins. <see langword="null"/>: none sent.
    /// </summary>
    public Action<string>? Notify { get; init; }

    /// <summary>Runs all VMs until <paramref name="stop"/> is cancelled or one of them fails.</summary>
    /// <param name="stop">Cancelled to stop the daemon (SIGINT/SIGTERM).</param>
    /// <returns><see cref="ExitCodes.Success"/> when every VM stopped cleanly after the stop; otherwise <see cref="ExitCodes.Failure"/>.</returns>
    public async Task<int> RunAsync(CancellationToken stop)
    {
        foreach (VmConfig vm in _config.Vms)
        {
            RemoveSocket(vm.GuestCid, vm.SocketPath, stale: true);
            RemoveSocket(vm.GuestCid, vm.UdsPath, stale: true);
            LogServing(_logger, vm.GuestCid, vm.SocketPath, vm.UdsPath, vm.TxBufferSize, vm.QueueSize, string.Join('+', vm.Groups));
        }

        _notListening = _config.Vms.Length;
        bool allStopped;
        using (var linked = CancellationTokenSource.CreateLinkedTokenSource(stop))
        {
            Task all = Task.WhenAll(_config.Vms.Select(vm => RunVmAsync(vm, linked)));
            try
            {
                await all.WaitAsync(linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Stop requested, or a VM failed: wait for the others below.
            }

            Notify?.Invoke("STOPPING=1\nSTATUS=stopping");
            allStopped = all.IsCompleted;
            if (!allStopped)
            {
                LogStopping(_logger, _config.Vms.Length);
                allStopped = await Task.WhenAny(all, Task.Delay(ShutdownTimeout, CancellationToken.None)).ConfigureAwait(false) == all;
                if (!allStopped)
                {
                    LogStopTimeout(_logger, ShutdownTimeout.TotalSeconds);
                }
            }
        }

        if (allStopped)
        {
            await DisposeServerAsync().ConfigureAwait(false);
        }

        foreach (VmConfig vm in _config.Vms)
        {
            RemoveSocket(vm.GuestCid, vm.SocketPath, stale: false);
            RemoveSocket(vm.GuestCid, vm.UdsPath, stale: false);
        }

        bool failed = Volatile.Read(ref _failed) != 0 || !allStopped;
        LogStopped(_logger, failed ? ExitCodes.Failure : ExitCodes.Success);
        return failed ? ExitCodes.Failure : ExitCodes.Success;
    }

    private async Task RunVmAsync(VmConfig vm, CancellationTokenSource linked)
    {
        CancellationToken token = linked.Token;
        try
        {
            await Task.Run(() => _server.RunAsync(vm, _logs, () => OnListening(vm), token), CancellationToken.None).ConfigureAwait(false);
            if (!token.IsCancellationRequested)
            {
                LogEndedEarly(_logger, vm.GuestCid);
                Fail(linked);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // Stopped as asked.
        }
        catch (Exception ex)
        {
            LogVmFailed(_logger, ex, vm.GuestCid);
            Fail(linked);
        }
    }

    private void OnListening(VmConfig vm)
    {
        LogListening(_logger, vm.GuestCid);
        if (Interlocked.Decrement(ref _notListening) == 0)
        {
            LogReady(_logger, _config.Vms.Length);
            Notify?.Invoke($"READY=1\nSTATUS=serving {_config.Vms.Length} VM(s)");
        }
    }

    private void Fail(CancellationTokenSource linked)
    {
        Interlocked.Exchange(ref _failed, 1);
        try
        {
            linked.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The daemon already gave up waiting for this VM.
        }
    }

    private async Task DisposeServerAsync()
    {
        try
        {
            switch (_server)
            {
                case IAsyncDisposable asyncDisposable:
                    await asyncDisposable.DisposeAsync().ConfigureAwait(false);
                    break;
                case IDisposable disposable:
                    disposable.Dispose();
                    break;
            }
        }
        catch (Exception ex)
        {
            LogDisposeFailed(_logger, ex);
            Interlocked.Exchange(ref _failed, 1);
        }
    }

    private void RemoveSocket(ulong guestCid, string path, bool stale)
    {
        try
        {
            if (SocketFiles.RemoveIfSocket(path, _probe))
            {
                if (stale)
                {
                    LogRemovedStale(_logger, guestCid, path);
                }
                else
                {
                    LogRemoved(_logger, guestCid, path);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogRemoveFailed(_logger, guestCid, path, ex.Message);
        }
    }

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "VM {GuestCid}: vhost-user socket {SocketPath}; host side {UdsPath} (guest connections to host port P go to {UdsPath}_P); tx-buffer-size {TxBufferSize}, queue-size {QueueSize}, groups {Groups}")]
    private static partial void LogServing(ILogger logger, ulong guestCid, string socketPath, string udsPath, uint txBufferSize, uint queueSize, string groups);

    [LoggerMessage(EventId = 20, Level = LogLevel.Debug, Message = "VM {GuestCid}: sockets listening")]
    private static partial void LogListening(ILogger logger, ulong guestCid);

    [LoggerMessage(EventId = 21, Level = LogLevel.Information, Message = "Ready: all {Count} VM(s) listening")]
    private static partial void LogReady(ILogger logger, int count);

    [LoggerMessage(EventId = 11, Level = LogLevel.Information, Message = "Stopping {Count} VM(s)")]
    private static partial void LogStopping(ILogger logger, int count);

    [LoggerMessage(EventId = 12, Level = LogLevel.Error, Message = "VMs did not stop within {Seconds} s; exiting anyway")]
    private static partial void LogStopTimeout(ILogger logger, double seconds);

    [LoggerMessage(EventId = 13, Level = LogLevel.Information, Message = "Stopped (exit code {ExitCode})")]
    private static partial void LogStopped(ILogger logger, int exitCode);

    [LoggerMessage(EventId = 14, Level = LogLevel.Error, Message = "VM {GuestCid}: its server returned without being asked to stop; stopping the daemon")]
    private static partial void LogEndedEarly(ILogger logger, ulong guestCid);

    [LoggerMessage(EventId = 15, Level = LogLevel.Error, Message = "VM {GuestCid}: failed; stopping the daemon")]
    private static partial void LogVmFailed(ILogger logger, Exception exception, ulong guestCid);

    [LoggerMessage(EventId = 16, Level = LogLevel.Error, Message = "Disposing the VM server failed")]
    private static partial void LogDisposeFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 17, Level = LogLevel.Information, Message = "VM {GuestCid}: removed stale socket {Path}")]
    private static partial void LogRemovedStale(ILogger logger, ulong guestCid, string path);

    [LoggerMessage(EventId = 18, Level = LogLevel.Debug, Message = "VM {GuestCid}: removed socket {Path}")]
    private static partial void LogRemoved(ILogger logger, ulong guestCid, string path);

    [LoggerMessage(EventId = 19, Level = LogLevel.Warning, Message = "VM {GuestCid}: cannot remove socket {Path}: {Reason}")]
    private static partial void LogRemoveFailed(ILogger logger, ulong guestCid, string path, string reason);
}
