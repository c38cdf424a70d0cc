using System.Net.Sockets;

namespace Vsock.Net;

/// <summary>A connection made through a hybrid vsock device: the Unix socket and the host port from <c>OK</c>.</summary>
/// <param name="Socket">The connected Unix stream socket; owned by the caller.</param>
/// <param name="HostPort">The host-side vsock port the device gave the connection (the guest sees it as the peer port).</param>
public sealed record HybridVsockConnection(Socket Socket, uint HostPort);
