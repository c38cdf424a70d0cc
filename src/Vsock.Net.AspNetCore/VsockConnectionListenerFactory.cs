using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Vsock.Net.AspNetCore;

/// <summary>
/// The Kestrel transport for <see cref="VsockEndPoint"/>s: binds a <see cref="VsockListener"/> and turns
/// accepted sockets into connections with Kestrel's own socket connection code
/// (<see cref="SocketConnectionContextFactory"/>), so pipes, buffers and shutdown behave as for TCP.
/// Kestrel asks every registered transport <see cref="CanBind"/>, so TCP and Unix endpoints keep working.
/// Owns nothing but the listeners it creates (each owned by its <see cref="IConnectionListener"/>).
/// </summary>
public sealed class VsockConnectionListenerFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private readonly SocketTransportOptions _options;
    private readonly ILoggerFactory _loggerFactory;

    /// <summary>Creates the factory (dependency injection does this).</summary>
    /// <param name="options">Kestrel's socket transport options (pipe and buffer settings are reused).</param>
    /// <param name="loggerFactory">Logging.</param>
    public VsockConnectionListenerFactory(IOptions<SocketTransportOptions> options, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _options = options.Value;
        _loggerFactory = loggerFactory;
    }

    /// <summary>True for a <see cref="VsockEndPoint"/>.</summary>
    /// <param name="endpoint">The endpoint Kestrel wants to bind.</param>
    /// <returns>Whether this transport binds it.</returns>
    public bool CanBind(EndPoint endpoint) => endpoint is VsockEndPoint;

    /// <summary>Listens on the vsock endpoint.</summary>
    /// <param name="endpoint">A <see cref="VsockEndPoint"/>.</param>
    /// <param name="cancellationToken">Unused: binding does not wait.</param>
    /// <returns>The listener.</returns>
    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is not VsockEndPoint vsock)
        {
            throw new NotSupportedException($"{endpoint} is not a vsock endpoint.");
        }

        var factoryOptions = new SocketConnectionFactoryOptions
        {
            IOQueueCount = _options.IOQueueCount,
            WaitForDataBeforeAllocatingBuffer = _options.WaitForDataBeforeAllocatingBuffer,
            MaxReadBufferSize = _options.MaxReadBufferSize,
            MaxWriteBufferSize = _options.MaxWriteBufferSize,
            UnsafePreferInlineScheduling = _options.UnsafePreferInlineScheduling,
        };
        VsockListener listener = VsockListener.Listen(vsock, System.Net.Sockets.SocketType.Stream, _options.Backlog);
        var contexts = new SocketConnectionContextFactory(factoryOptions, _loggerFactory.CreateLogger("Vsock.Net.AspNetCore"));
        return ValueTask.FromResult<IConnectionListener>(new VsockConnectionListener(listener, contexts));
    }
}
