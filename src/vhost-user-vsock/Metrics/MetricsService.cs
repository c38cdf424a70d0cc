using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Virtio.Vsock.Device;

namespace VhostUserVsock.Metrics;

/// <summary>
/// <c>--metrics-listen</c> as a hosted service: collects the <c>VirtioVsock</c> meter from the host's start and
/// serves it in Prometheus text until the stop. A failure to bind fails the start (the daemon exits 1). Owns the
/// collector and the endpoint.
/// </summary>
/// <param name="address">Where to serve.</param>
/// <param name="logger">Where to log.</param>
public sealed class MetricsService(MetricsAddress address, ILogger<MetricsEndpoint> logger) : IHostedService, IAsyncDisposable
{
    private MeterCollector? _collector;
    private MetricsEndpoint? _endpoint;

    /// <inheritdoc/>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        _collector = new MeterCollector(VsockMeter.MeterName);
        _endpoint = MetricsEndpoint.Start(address, _collector, logger);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public async Task StopAsync(CancellationToken cancellationToken) => await DisposeAsync().ConfigureAwait(false);

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        MetricsEndpoint? endpoint = Interlocked.Exchange(ref _endpoint, null);
        if (endpoint is not null)
        {
            await endpoint.DisposeAsync().ConfigureAwait(false);
        }

        Interlocked.Exchange(ref _collector, null)?.Dispose();
    }
}
