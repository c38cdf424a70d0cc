using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Vsock.Net.AspNetCore;

/// <summary>
/// <c>ListenVsock</c>: Kestrel listens on a vsock port. On the web host builder it registers the
/// vsock transport and adds the endpoint; on <see cref="KestrelServerOptions"/> (inside
/// <c>ConfigureKestrel</c>) it adds the endpoint, after <see cref="UseVsock"/> registered the transport.
/// </summary>
public static class VsockWebHostExtensions
{
    /// <summary>Registers the vsock transport next to Kestrel's socket transport (idempotent).</summary>
    /// <param name="builder">The web host builder.</param>
    /// <returns>The builder.</returns>
    public static IWebHostBuilder UseVsock(this IWebHostBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.ConfigureServices(services =>
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IConnectionListenerFactory, VsockConnectionListenerFactory>()));
    }

    /// <summary>Kestrel listens on vsock port <paramref name="port"/> (every local CID) and the vsock transport is registered.</summary>
    /// <param name="builder">The web host builder (<c>WebApplicationBuilder.WebHost</c>).</param>
    /// <param name="port">The vsock port.</param>
    /// <param name="configure">Endpoint settings, e.g. <c>o =&gt; o.Protocols = HttpProtocols.Http2</c> for gRPC.</param>
    /// <returns>The builder.</returns>
    public static IWebHostBuilder ListenVsock(this IWebHostBuilder builder, uint port, Action<ListenOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.UseVsock().ConfigureKestrel(options => options.ListenVsock(port, configure));
    }

    /// <summary>Adds a vsock endpoint (needs <see cref="UseVsock"/>).</summary>
    /// <param name="options">Kestrel's options.</param>
    /// <param name="port">The vsock port.</param>
    /// <param name="configure">Endpoint settings.</param>
    public static void ListenVsock(this KestrelServerOptions options, uint port, Action<ListenOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Listen(new VsockEndPoint(VsockEndPoint.AnyCid, port), configure ?? (_ => { }));
    }
}
