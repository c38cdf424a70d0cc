namespace Virtio.Vsock.Backends.Unix.Access;

/// <summary>
/// Which connections the Unix backend lets through: host ports the guest may connect to, and guest ports host
/// programs may connect to, optionally only for host programs with a given uid or gid (SO_PEERCRED). A direction
/// with no rule allows everything (the default, as without rules); once a direction has a rule, only what a rule
/// allows passes. A refused attempt gets the same answer as "no listener". Immutable; decides, never acts.
/// </summary>
public sealed class VsockAccessRules
{
    /// <summary>Creates the rules.</summary>
    /// <param name="guestToHost">Host ports the guest may connect to; <see langword="null"/> or empty: all.</param>
    /// <param name="hostToGuest">Guest ports host programs may connect to, with conditions; <see langword="null"/> or empty: all.</param>
    public VsockAccessRules(IReadOnlyList<PortRange>? guestToHost, IReadOnlyList<HostToGuestRule>? hostToGuest)
    {
        GuestToHost = guestToHost ?? [];
        HostToGuest = hostToGuest ?? [];
    }

    /// <summary>Host ports the guest may connect to (empty: all).</summary>
    public IReadOnlyList<PortRange> GuestToHost { get; }

    /// <summary>Guest ports host programs may connect to (empty: all).</summary>
    public IReadOnlyList<HostToGuestRule> HostToGuest { get; }

    /// <summary>Whether the guest may connect to host port <paramref name="hostPort"/>.</summary>
    /// <param name="hostPort">The host port.</param>
    /// <returns><see langword="true"/> when allowed.</returns>
    public bool AllowsGuestConnect(uint hostPort) =>
        GuestToHost.Count == 0 || GuestToHost.Any(range => range.Contains(hostPort));

    /// <summary>Whether a host program with these credentials may connect to guest port <paramref name="guestPort"/>.</summary>
    /// <param name="guestPort">The guest port.</param>
    /// <param name="peer">The host program's credentials, or <see langword="null"/> when unknown (rules with a condition then refuse).</param>
    /// <returns><see langword="true"/> when allowed.</returns>
    public bool AllowsHostConnect(uint guestPort, PeerCredentials? peer) =>
        HostToGuest.Count == 0 || HostToGuest.Any(rule => rule.Allows(guestPort, peer));
}

/// <summary>An inclusive range of ports.</summary>
/// <param name="First">The first port.</param>
/// <param name="Last">The last port (at least <paramref name="First"/>).</param>
public readonly record struct PortRange(uint First, uint Last)
{
    /// <summary>Whether <paramref name="port"/> is in the range.</summary>
    /// <param name="port">A port.</param>
    /// <returns><see langword="true"/> when inside.</returns>
    public bool Contains(uint port) => port >= First && port <= Last;
}

/// <summary>Guest ports host programs may connect to, optionally only with a given uid or gid.</summary>
/// <param name="Ports">The guest ports.</param>
/// <param name="Uid">Only host programs running as this uid, or any.</param>
/// <param name="Gid">Only host programs running with this gid, or any.</param>
public sealed record HostToGuestRule(PortRange Ports, uint? Uid = null, uint? Gid = null)
{
    /// <summary>Whether the rule allows the attempt.</summary>
    /// <param name="guestPort">The guest port.</param>
    /// <param name="peer">The host program's credentials, or <see langword="null"/> when unknown.</param>
    /// <returns><see langword="true"/> when allowed.</returns>
    public bool Allows(uint guestPort, PeerCredentials? peer)
    {
        if (!Ports.Contains(guestPort))
        {
            return false;
        }

        if (Uid is null && Gid is null)
        {
            return true;
        }

        return peer is { } p && (Uid is null || Uid == p.Uid) && (Gid is null || Gid == p.Gid);
    }
}

/// <summary>A connected Unix socket peer's credentials (SO_PEERCRED: <c>struct ucred</c>).</summary>
/// <param name="Pid">The peer's process id.</param>
/// <param name="Uid">Its user id.</param>
/// <param name="Gid">Its group id.</param>
public readonly record struct PeerCredentials(int Pid, uint Uid, uint Gid)
{
    /// <summary>Reads SO_PEERCRED from a connected Unix socket.</summary>
    /// <param name="socket">The socket.</param>
    /// <returns>The credentials, or <see langword="null"/> when the system does not say.</returns>
    public static PeerCredentials? Of(System.Net.Sockets.Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        const int SolSocket = 1;
        const int SoPeerCred = 17;
        Span<byte> ucred = stackalloc byte[12];
        try
        {
            if (!OperatingSystem.IsLinux() || socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred) != 12)
            {
                return null;
            }
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            return null;
        }

        return new PeerCredentials(
            System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(ucred),
            System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(ucred[4..]),
            System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(ucred[8..]));
    }
}
