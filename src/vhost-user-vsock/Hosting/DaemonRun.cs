using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using VhostUserVsock.Cli;
using VhostUserVsock.Configuration;

namespace VhostUserVsock.Hosting;

/// <summary>
/// The state one daemon run shares between its hosted services: how many VMs are not listening yet, whether
/// anything failed (a VM, the control socket, a VM that did not stop in time), and the way to stop the whole
/// daemon. Decides the exit code. Owns no resource; must never stop the daemon other than through
/// <see cref="IHostApplicationLifetime.StopApplication"/>.
/// </summary>
public sealed partial class DaemonRun
{
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ILogger _logger;
    private int _notListening;
    private int _failed;
    private int _timeoutLogged;

    /// <summary>Creates the run state.</summary>
    /// <param name="config">The validated configuration.</param>
    /// <param name="lifetime">The host's lifetime (stops the daemon).</param>
    /// <param name="logger">Where to log.</param>
    public DaemonRun(DaemonConfig config, IHostApplicationLifetime lifetime, ILogger<DaemonRun> logger)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(lifetime);
        ArgumentNullException.ThrowIfNull(logger);
        Config = config;
        _lifetime = lifetime;
        _logger = logger;
        _notListening = config.Vms.Length;
    }

    /// <summary>The configuration being served.</summary>
    public DaemonConfig Config { get; }

    /// <summary>Whether every VM's sockets accept connections and nothing failed so far.</summary>
    public bool AllListening => Volatile.Read(ref _notListening) == 0 && !Failed;

    /// <summary>Whether something failed: the process exits with <see cref="ExitCodes.Failure"/>.</summary>
    public bool Failed => Volatile.Read(ref _failed) != 0;

    /// <summary>The exit code so far.</summary>
    public int ExitCode => Failed ? ExitCodes.Failure : ExitCodes.Success;

    /// <summary>Records that one more VM listens on both of its sockets.</summary>
    /// <param name="guestCid">The VM.</param>
    public void Listening(ulong guestCid)
    {
        LogListening(_logger, guestCid);
        if (Interlocked.Decrement(ref _notListening) == 0 && !Failed)
        {
            LogReady(_logger, Config.Vms.Length);
        }
    }

    /// <summary>Records a failure and stops the daemon.</summary>
    public void Fail()
    {
        Interlocked.Exchange(ref _failed, 1);
        _lifetime.StopApplication();
    }

    /// <summary>Records that a VM did not stop within the host's shutdown timeout (logged once per run).</summary>
    /// <param name="timeout">The shutdown timeout.</param>
    public void StopTimedOut(TimeSpan timeout)
    {
        Interlocked.Exchange(ref _failed, 1);
        if (Interlocked.Exchange(ref _timeoutLogged, 1) == 0)
        {
            LogStopTimeout(_logger, timeout.TotalSeconds);
        }
    }

    [LoggerMessage(EventId = 20, Level = LogLevel.Debug, Message = "VM {GuestCid}: sockets listening")]
    private static partial void LogListening(ILogger logger, ulong guestCid);

    [LoggerMessage(EventId = 21, Level = LogLevel.Information, Message = "Ready: all {Count} VM(s) listening")]
    private static partial void LogReady(ILogger logger, int count);

    [LoggerMessage(EventId = 12, Level = LogLevel.Error, Message = "VMs did not stop within {Seconds} s; exiting anyway")]
    private static partial void LogStopTimeout(ILogger logger, double seconds);
}
