using Microsoft.Extensions.Logging;
using VhostUserVsock.Configuration;

namespace VhostUserVsock.Cli;

/// <summary>
/// Serves VMs: the seam between the daemon's command line and the vhost-user server with the
/// vsock device behind it. The daemon creates one instance per process (from the whole
/// <see cref="DaemonConfig"/>, so state shared by VMs, such as the CID map for sibling
/// communication, can live in it) and calls <see cref="RunAsync(VmConfig, ILoggerFactory, CancellationToken)"/> once per VM, concurrently.
/// </summary>
/// <remarks>
/// Contract, as the daemon's hosted services (<see cref="Hosting.VmService"/>) rely on it:
/// <list type="bullet">
/// <item>When <see cref="RunAsync(VmConfig, ILoggerFactory, CancellationToken)"/> is called the configuration is valid and both socket paths
/// are free (stale sockets already removed); the server binds <see cref="VmConfig.SocketPath"/>
/// (vhost-user, one frontend at a time, the next one accepted after a disconnect) and
/// <see cref="VmConfig.UdsPath"/> (host side) itself.</item>
/// <item>It runs until <c>stop</c> is cancelled, then closes its connections and returns (or
/// throws <see cref="OperationCanceledException"/>) promptly; the host removes both socket files
/// afterwards.</item>
/// <item>Any other exception means the VM failed: the host logs it, stops the other VMs and the
/// process exits with <see cref="ExitCodes.Failure"/>.</item>
/// <item>If the instance is <see cref="IAsyncDisposable"/> or <see cref="IDisposable"/>, the host
/// disposes it after every VM has stopped.</item>
/// </list>
/// </remarks>
public interface IVmServer
{
    /// <summary>Serves one VM until <paramref name="stop"/> is cancelled.</summary>
    /// <param name="vm">The VM to serve.</param>
    /// <param name="logs">Where to log.</param>
    /// <param name="stop">Cancelled when the daemon stops (SIGINT/SIGTERM or another VM's failure).</param>
    /// <returns>A task that completes when the VM has stopped.</returns>
    Task RunAsync(VmConfig vm, ILoggerFactory logs, CancellationToken stop);

    /// <summary>
    /// Serves one VM until <paramref name="stop"/> is cancelled, calling <paramref name="listening"/> once both of
    /// its sockets accept connections (the daemon reports readiness, <c>READY=1</c>, when every VM has). The
    /// default calls it as soon as <see cref="RunAsync(VmConfig, ILoggerFactory, CancellationToken)"/> returns its task.
    /// </summary>
    /// <param name="vm">The VM to serve.</param>
    /// <param name="logs">Where to log.</param>
    /// <param name="listening">Called once, when the VM's sockets listen.</param>
    /// <param name="stop">Cancelled when the daemon stops.</param>
    /// <returns>A task that completes when the VM has stopped.</returns>
    Task RunAsync(VmConfig vm, ILoggerFactory logs, Action listening, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(listening);
        Task running = RunAsync(vm, logs, stop);
        listening();
        return running;
    }
}
