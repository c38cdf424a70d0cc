using System.Net;
using System.Net.Sockets;

namespace VhostUserVsock.Metrics;

/// <summary>
/// Where <c>--metrics-listen</c> serves: <c>HOST:PORT</c> (an IP address, <c>[v6]:PORT</c>, or <c>localhost</c>) or
/// <c>unix:/absolute/path</c>. Non-loopback addresses are refused unless explicitly allowed. Parsing only.
/// </summary>
public sealed record MetricsAddress
{
    /// <summary>The default: loopback TCP port 9464 (the port OpenTelemetry's Prometheus exporter uses).</summary>
    public const string Default = "127.0.0.1:9464";

    private MetricsAddress(EndPoint endPoint, string text)
    {
        EndPoint = endPoint;
        Text = text;
    }

    /// <summary>The endpoint to bind.</summary>
    public EndPoint EndPoint { get; }

    /// <summary>The address as given.</summary>
    public string Text { get; }

    /// <summary>The socket path for <c>unix:</c> addresses; otherwise <see langword="null"/>.</summary>
    public string? UnixPath => EndPoint is UnixDomainSocketEndPoint ? Text[5..] : null;

    /// <summary>Parses an address.</summary>
    /// <param name="text">The option's value.</param>
    /// <param name="allowRemote">Whether a non-loopback IP address is accepted.</param>
    /// <param name="address">The address, when valid.</param>
    /// <returns><see langword="null"/> when valid; otherwise why not (one line).</returns>
    public static string? TryParse(string text, bool allowRemote, out MetricsAddress? address)
    {
        ArgumentNullException.ThrowIfNull(text);
        address = null;
        if (text.StartsWith("unix:", StringComparison.Ordinal))
        {
            string path = text[5..];
            if (!Path.IsPathRooted(path) || System.Text.Encoding.UTF8.GetByteCount(path) >= 108)
            {
                return $"'{text}': a unix: address needs an absolute path shorter than 108 bytes";
            }

            address = new MetricsAddress(new UnixDomainSocketEndPoint(path), text);
            return null;
        }

        string forParse = text.StartsWith("localhost:", StringComparison.OrdinalIgnoreCase) ? "127.0.0.1" + text[9..] : text;
        int colon = forParse.LastIndexOf(':');
        bool hasPort = colon > 0 && (forParse[0] == '[' ? forParse[colon - 1] == ']' : forParse.IndexOf(':', StringComparison.Ordinal) == colon);
        if (!hasPort || !IPEndPoint.TryParse(forParse, out IPEndPoint? ip))
        {
            return $"'{text}' is not HOST:PORT (an IP address and a port, e.g. {Default}) or unix:/PATH";
        }

        if (!IPAddress.IsLoopback(ip.Address) && !allowRemote)
        {
            return $"'{text}' is not a loopback address; metrics are served on loopback or a Unix socket unless --metrics-allow-remote is given";
        }

        address = new MetricsAddress(ip, text);
        return null;
    }
}
