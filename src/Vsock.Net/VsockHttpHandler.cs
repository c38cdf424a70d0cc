using System.Net.Sockets;

namespace Vsock.Net;

/// <summary>
/// <see cref="SocketsHttpHandler"/>s whose connections go over vsock, for <see cref="HttpClient"/> and
/// <c>Grpc.Net.Client</c>: every connection the handler opens goes to one vsock service, whatever host
/// the request URI names (use e.g. <c>http://guest</c>). HTTP/1.1 and HTTP/2 (gRPC: prior knowledge,
/// plain <c>http://</c>) both work. Owns only the connect callbacks.
/// </summary>
public static class VsockHttpHandler
{
    /// <summary>From inside a guest: connections to <paramref name="cid"/>:<paramref name="port"/> over AF_VSOCK.</summary>
    /// <param name="cid">Usually <see cref="VsockEndPoint.HostCid"/>.</param>
    /// <param name="port">The service's port.</param>
    /// <param name="connectTimeout">Per-connection connect timeout (default <see cref="VsockSocket.DefaultConnectTimeout"/>).</param>
    /// <returns>A new handler; give it to an <see cref="HttpClient"/>.</returns>
    public static SocketsHttpHandler ForVsock(uint cid, uint port, TimeSpan? connectTimeout = null)
    {
        var endPoint = new VsockEndPoint(cid, port);
        return ForStream(async token => await VsockSocket.ConnectStreamAsync(endPoint, connectTimeout, token).ConfigureAwait(false));
    }

    /// <summary>From the host: connections to guest port <paramref name="port"/> through the hybrid vsock device at <paramref name="udsPath"/>.</summary>
    /// <param name="udsPath">The device's Unix socket (<c>uds_path</c>).</param>
    /// <param name="port">The guest service's vsock port.</param>
    /// <param name="handshakeTimeout">Per-connection <c>CONNECT</c> timeout (default <see cref="HybridVsockClient.DefaultHandshakeTimeout"/>).</param>
    /// <returns>A new handler.</returns>
    public static SocketsHttpHandler ForHybridVsock(string udsPath, uint port, TimeSpan? handshakeTimeout = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(udsPath);
        return ForStream(async token => await HybridVsockClient.ConnectStreamAsync(udsPath, port, handshakeTimeout, token).ConfigureAwait(false));
    }

    /// <summary>Connections made by <paramref name="connect"/> (any vsock transport: an in-process device backend, a test double).</summary>
    /// <param name="connect">Opens one connection to the service.</param>
    /// <returns>A new handler.</returns>
    public static SocketsHttpHandler ForStream(Func<CancellationToken, ValueTask<Stream>> connect)
    {
        ArgumentNullException.ThrowIfNull(connect);
        return new SocketsHttpHandler
        {
            ConnectCallback = (_, token) => connect(token),
            UseProxy = false,
            AllowAutoRedirect = false,
        };
    }
}
