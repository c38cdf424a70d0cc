using System.Globalization;
using System.Text;

namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// The file-system naming of the hybrid-vsock Unix backend, in one place. Owns the path rules and
/// nothing else; must never touch the file system.
/// </summary>
/// <remarks>
/// <list type="table">
/// <listheader><term>socket</term><description>path and socket type</description></listheader>
/// <item><term>host-initiated, stream</term><description><c>uds_path</c>, SOCK_STREAM, we listen
/// (Firecracker / vhost-device-vsock compatible).</description></item>
/// <item><term>host-initiated, seqpacket</term><description><c>uds_path</c> + <c>".seqpacket"</c>,
/// SOCK_SEQPACKET, we listen (a path can hold one socket type only, so the seqpacket listener gets
/// its own). See <see cref="SeqPacketListenerPath"/>.</description></item>
/// <item><term>guest-initiated to host port P</term><description><c>uds_path</c> + <c>"_"</c> + P
/// (decimal), the host application listens; the socket type follows the guest's: a SOCK_STREAM
/// guest connection connects with SOCK_STREAM and a SOCK_SEQPACKET one with SOCK_SEQPACKET. As in
/// Linux vsock, where stream and seqpacket share one port space, port P is served by one type at a
/// time; a type mismatch fails (EPROTOTYPE) and the guest gets RST.</description></item>
/// </list>
/// </remarks>
public static class UnixBackendPaths
{
    /// <summary>The suffix of the SOCK_SEQPACKET listener's path.</summary>
    public const string SeqPacketListenerSuffix = ".seqpacket";

    /// <summary>The longest socket path Linux accepts, in UTF-8 bytes (<c>sun_path</c> is 108 with the NUL).</summary>
    public const int MaxPathBytes = 107;

    /// <summary>The path the SOCK_SEQPACKET listener for host-initiated connections binds.</summary>
    /// <param name="udsPath">The backend's <c>uds_path</c>.</param>
    /// <returns><paramref name="udsPath"/> + <c>".seqpacket"</c>.</returns>
    public static string SeqPacketListenerPath(string udsPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(udsPath);
        return udsPath + SeqPacketListenerSuffix;
    }

    /// <summary>The path a guest-initiated connection to host port <paramref name="port"/> connects to.</summary>
    /// <param name="udsPath">The backend's <c>uds_path</c>.</param>
    /// <param name="port">The host (destination) port.</param>
    /// <returns><paramref name="udsPath"/> + <c>"_"</c> + the decimal port.</returns>
    public static string HostPortPath(string udsPath, uint port)
    {
        ArgumentException.ThrowIfNullOrEmpty(udsPath);
        return udsPath + "_" + port.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>True if <paramref name="path"/> fits in a Unix socket address.</summary>
    /// <param name="path">A socket path.</param>
    /// <returns>True when it is non-empty, has no NUL and is at most <see cref="MaxPathBytes"/> UTF-8 bytes.</returns>
    public static bool FitsSocketAddress(string path) =>
        !string.IsNullOrEmpty(path) && !path.Contains('\0', StringComparison.Ordinal) &&
        Encoding.UTF8.GetByteCount(path) <= MaxPathBytes;
}
