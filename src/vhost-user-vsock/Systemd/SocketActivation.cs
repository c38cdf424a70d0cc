using System.Globalization;
using System.Net.Sockets;

namespace VhostUserVsock.Systemd;

/// <summary>
/// systemd socket activation (<c>sd_listen_fds</c>): the listening sockets passed as file descriptors 3, 4, ...
/// when <c>LISTEN_PID</c> is this process and <c>LISTEN_FDS</c> counts them (<c>LISTEN_FDNAMES</c> names them).
/// Each is matched to a VM by the path it is bound to. Owns the passed sockets until a VM takes one; must never
/// remove their socket files (systemd owns them) or use a descriptor not passed to this process.
/// </summary>
public sealed class SocketActivation : IDisposable
{
    /// <summary>The first passed descriptor (<c>SD_LISTEN_FDS_START</c>).</summary>
    public const int FirstDescriptor = 3;

    private readonly Dictionary<string, Socket> _byPath;
    private readonly Lock _gate = new();

    private SocketActivation(Dictionary<string, Socket> byPath, IReadOnlyList<string> names)
    {
        _byPath = byPath;
        Names = names;
    }

    /// <summary>No sockets passed.</summary>
    public static SocketActivation None { get; } = new([], []);

    /// <summary>The paths of the passed Unix listening sockets not taken yet.</summary>
    public IReadOnlyCollection<string> Paths
    {
        get
        {
            lock (_gate)
            {
                return [.. _byPath.Keys];
            }
        }
    }

    /// <summary>The names from <c>LISTEN_FDNAMES</c>, one per descriptor (empty when not given).</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>
    /// Reads the protocol's variables. Descriptors that are not Unix stream (or seqpacket) listening sockets bound to a path are
    /// closed and ignored (an error line each in <paramref name="problems"/>).
    /// </summary>
    /// <param name="environment">Reads a variable (<see cref="Environment.GetEnvironmentVariable(string)"/>).</param>
    /// <param name="processId">This process's id.</param>
    /// <param name="problems">Where unusable descriptors are described.</param>
    /// <param name="firstDescriptor">The first descriptor (3 except in tests).</param>
    /// <returns>The passed sockets, or <see cref="None"/>.</returns>
    public static SocketActivation FromEnvironment(Func<string, string?> environment, int processId, ICollection<string> problems, int firstDescriptor = FirstDescriptor)
    {
        ArgumentNullException.ThrowIfNull(environment);
        ArgumentNullException.ThrowIfNull(problems);
        if (!int.TryParse(environment("LISTEN_PID"), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) || pid != processId
            || !int.TryParse(environment("LISTEN_FDS"), NumberStyles.None, CultureInfo.InvariantCulture, out int count) || count <= 0 || count > 4096)
        {
            return None;
        }

        string[] names = environment("LISTEN_FDNAMES")?.Split(':') ?? [];
        var byPath = new Dictionary<string, Socket>(StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            int fd = firstDescriptor + i;
            var socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
            string? path = null;
            try
            {
                if (socket.SocketType is SocketType.Stream or SocketType.Seqpacket && socket.AddressFamily == AddressFamily.Unix
                    && socket.LocalEndPoint is UnixDomainSocketEndPoint endPoint)
                {
                    path = endPoint.ToString();
                }
            }
            catch (SocketException)
            {
                path = null;
            }

            if (string.IsNullOrEmpty(path) || path[0] == '\0' || path[0] == '@' || byPath.ContainsKey(Path.GetFullPath(path)))
            {
                problems.Add($"socket activation: descriptor {fd} ({(i < names.Length ? names[i] : "unnamed")}) is not a Unix stream or seqpacket socket bound to a path of its own; ignored");
                socket.Dispose();
                continue;
            }

            byPath.Add(Path.GetFullPath(path), socket);
        }

        return new SocketActivation(byPath, names);
    }

    /// <summary>Whether a passed socket is bound to <paramref name="path"/>.</summary>
    /// <param name="path">A socket path.</param>
    /// <returns><see langword="true"/> when systemd passed it.</returns>
    public bool Has(string path)
    {
        lock (_gate)
        {
            return _byPath.ContainsKey(Path.GetFullPath(path));
        }
    }

    /// <summary>Takes the passed socket bound to <paramref name="path"/>; the caller owns it then.</summary>
    /// <param name="path">A socket path.</param>
    /// <returns>The listening socket, or <see langword="null"/> when none was passed for it.</returns>
    public Socket? Take(string path)
    {
        lock (_gate)
        {
            return _byPath.Remove(Path.GetFullPath(path), out Socket? socket) ? socket : null;
        }
    }

    /// <summary>Closes the passed sockets no VM took.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            foreach (Socket socket in _byPath.Values)
            {
                socket.Dispose();
            }

            _byPath.Clear();
        }
    }
}
