using System.Net.Sockets;
using System.Text;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// Asks a running daemon's control socket for its connections every two seconds and keeps the replies (raw JSON,
/// with the time; at most ten minutes of them): evidence for a real-guest scenario that stalls, since the device's
/// view (bytes held for the host, credit, stall reason and duration) is what tells a device stall from a guest-side one.
/// </summary>
internal static partial class ConnectionSnapshots
{
    private const int Kept = 300;

    /// <summary>Collects snapshots into <paramref name="snapshots"/> (locked while written) until cancelled.</summary>
    /// <param name="controlPath">The daemon's <c>--control</c> socket.</param>
    /// <param name="snapshots">The last <see cref="Kept"/> replies, oldest first.</param>
    /// <param name="cancellationToken">Ends the collection.</param>
    /// <returns>A task that completes when cancelled; failures to reach the socket are recorded, not thrown.</returns>
    public static async Task CollectAsync(string controlPath, Queue<string> snapshots, CancellationToken cancellationToken)
    {
        // The sampling period: nothing waits on a sample, so this paces the collection and synchronises nothing.
        using var period = new PeriodicTimer(TimeSpan.FromSeconds(2));
        do
        {
            string entry;
            try
            {
                entry = await QueryAsync(controlPath, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (OperationCanceledException)
            {
                entry = "(control socket: no reply within 5 s)";
            }
            catch (Exception e) when (e is SocketException or IOException)
            {
                entry = $"(control socket: {e.Message})";
            }

            lock (snapshots)
            {
                snapshots.Enqueue($"[{DateTime.UtcNow:HH:mm:ss.fff}] {entry}");
                while (snapshots.Count > Kept)
                    snapshots.Dequeue();
            }
        }
        while (await NextTickAsync(period, cancellationToken).ConfigureAwait(false));
    }

    private static async Task<bool> NextTickAsync(PeriodicTimer period, CancellationToken cancellationToken)
    {
        try
        {
            return await period.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>The snapshots, each printed once with how many identical ones followed (the stall duration aside).</summary>
    /// <param name="snapshots">What <see cref="CollectAsync"/> collected.</param>
    /// <returns>One line per distinct snapshot.</returns>
    public static string Format(Queue<string> snapshots)
    {
        var lines = new List<string>();
        string? previous = null;
        int repeats = 0;
        lock (snapshots)
        {
            foreach (string snapshot in snapshots)
            {
                string key = StalledMs().Replace(snapshot[(snapshot.IndexOf(']', StringComparison.Ordinal) + 1)..], string.Empty);
                if (key == previous)
                {
                    repeats++;
                    continue;
                }

                if (repeats > 0)
                    lines[^1] += $" (and {repeats} more like it)";
                lines.Add(snapshot);
                previous = key;
                repeats = 0;
            }
        }

        if (repeats > 0)
            lines[^1] += $" (and {repeats} more like it)";
        return string.Join("\n", lines);
    }

    [System.Text.RegularExpressions.GeneratedRegex("\"stalledMs\":[0-9]+")]
    private static partial System.Text.RegularExpressions.Regex StalledMs();

    private static async Task<string> QueryAsync(string controlPath, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(controlPath), timeout.Token).ConfigureAwait(false);
        await socket.SendAsync("{\"command\":\"connections\"}\n"u8.ToArray(), SocketFlags.None, timeout.Token).ConfigureAwait(false);
        var reply = new MemoryStream();
        var buffer = new byte[8192];
        while (reply.Length < (1 << 20))
        {
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            if (n == 0)
                break;
            reply.Write(buffer, 0, n);
            if (Array.IndexOf(buffer, (byte)'\n', 0, n) >= 0)
                break;
        }

        return Encoding.UTF8.GetString(reply.ToArray()).TrimEnd();
    }
}
