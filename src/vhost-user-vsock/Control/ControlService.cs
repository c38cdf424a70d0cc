using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace VhostUserVsock.Control;

/// <summary>
/// The control socket (<c>--control PATH</c>) as a hosted service: listens from the host's start to its stop.
/// A path that cannot be bound fails the start (the daemon exits 1). Owns the <see cref="ControlServer"/>.
/// </summary>
/// <param name="path">The socket path.</param>
/// <param name="registry">The running VMs.</param>
/// <param name="logger">Where to log.</param>
public sealed class ControlService(string path, VmRegistry registry, ILogger<ControlServer> logger) : IHostedService, IAsyncDisposable
{
    private ControlServer? _server;

    /// <inheritdoc/>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        _server = ControlServer.Start(path, registry, logger);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public async Task StopAsync(CancellationToken cancellationToken) => await DisposeAsync().ConfigureAwait(false);

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        ControlServer? server = Interlocked.Exchange(ref _server, null);
        if (server is not null)
        {
            await server.DisposeAsync().ConfigureAwait(false);
        }
    }
}
