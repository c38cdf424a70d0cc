using System.Net.Sockets;
using System.Text;

namespace VhostUserVsock.Systemd;

/// <summary>
/// systemd's readiness protocol (<c>sd_notify</c>, <c>Type=notify</c>): sends state lines such as <c>READY=1</c>
/// and <c>STOPPING=1</c> as one datagram each to the Unix socket named by <c>NOTIFY_SOCKET</c> (a path, or an
/// abstract name starting with <c>@</c>). Owns its datagram socket; must never throw at the daemon or block it:
/// a failed send is reported as <see langword="false"/> and the daemon runs on.
/// </summary>
public sealed class SystemdNotifier : IDisposable
{
    private readonly Socket _socket;
    private readonly UnixDomainSocketEndPoint _target;
    private readonly Lock _gate = new();

    private SystemdNotifier(string address)
    {
        Address = address;
        _target = new UnixDomainSocketEndPoint(address[0] == '@' ? "\0" + address[1..] : address);
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    }

    /// <summary>The notification socket as given in <c>NOTIFY_SOCKET</c>.</summary>
    public string Address { get; }

    /// <summary>The notifier of this process, or <see langword="null"/> when not started by systemd with <c>Type=notify</c>.</summary>
    /// <param name="notifySocket">The value of <c>NOTIFY_SOCKET</c>.</param>
    /// <returns>The notifier, or <see langword="null"/> when the value is empty or unusable.</returns>
    public static SystemdNotifier? Create(string? notifySocket)
    {
        if (string.IsNullOrEmpty(notifySocket) || notifySocket.Length < 2 || (notifySocket[0] != '/' && notifySocket[0] != '@'))
        {
            return null;
        }

        return new SystemdNotifier(notifySocket);
    }

    /// <summary>Sends one notification, e.g. <c>READY=1\nSTATUS=serving 2 VM(s)</c>.</summary>
    /// <param name="state">Newline-separated assignments.</param>
    /// <returns><see langword="true"/> when the datagram was sent.</returns>
    public bool Notify(string state)
    {
        ArgumentNullException.ThrowIfNull(state);
        byte[] bytes = Encoding.UTF8.GetBytes(state);
        lock (_gate)
        {
            try
            {
                return _socket.SendTo(bytes, SocketFlags.None, _target) == bytes.Length;
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return false;
            }
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _socket.Dispose();
}
