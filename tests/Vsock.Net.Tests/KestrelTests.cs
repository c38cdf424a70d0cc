using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Vsock.Net.AspNetCore;

namespace Vsock.Net.Tests;

/// <summary>The Kestrel transport's registration and endpoint selection (binding needs a guest: see the real-guest tests).</summary>
public sealed class KestrelTests
{
    [Fact]
    public void The_vsock_transport_binds_vsock_endpoints_only()
    {
        var factory = new VsockConnectionListenerFactory(Options.Create(new SocketTransportOptions()), NullLoggerFactory.Instance);
        Assert.True(factory.CanBind(new VsockEndPoint(VsockEndPoint.AnyCid, 8080)));
        Assert.False(factory.CanBind(new IPEndPoint(IPAddress.Loopback, 8080)));
        Assert.False(factory.CanBind(new System.Net.Sockets.UnixDomainSocketEndPoint("/tmp/x")));
        Assert.Throws<NotSupportedException>(() => factory.BindAsync(new IPEndPoint(IPAddress.Loopback, 8080), TestContext.Current.CancellationToken));
    }

    [Fact]
    public void ListenVsock_registers_the_transport_once_next_to_the_socket_transport()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ListenVsock(8080);
        builder.WebHost.ListenVsock(8081);
        using var app = builder.Build();
        var factories = app.Services.GetServices<IConnectionListenerFactory>().ToList();
        Assert.Single(factories.OfType<VsockConnectionListenerFactory>());
        Assert.Contains(factories, f => f is not VsockConnectionListenerFactory);
    }
}
