using System.Net.Sockets;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>The outcome of a host-initiated <c>CONNECT &lt;port&gt;</c> over the daemon's <c>uds-path</c>.</summary>
/// <param name="Socket">The connected socket after <c>OK &lt;n&gt;</c> (the caller owns it), or null on failure.</param>
/// <param name="LocalPort">The host-side port from the <c>OK</c> line (0 on failure).</param>
/// <param name="Failure">Why it failed: "closed without OK", "reset (ConnectionReset)", a bad reply...; null on success.</param>
/// <param name="Elapsed">From the connect call until the reply (or the failure).</param>
public sealed record GuestConnectAttempt(Socket? Socket, uint LocalPort, string? Failure, TimeSpan Elapsed)
{
    /// <summary>True when the daemon answered <c>OK</c>.</summary>
    public bool Connected => Socket is not null;
}
