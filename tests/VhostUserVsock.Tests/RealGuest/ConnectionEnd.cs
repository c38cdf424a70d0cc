using System.Diagnostics;
using System.Net.Sockets;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>How and when a host connection ended while being drained (see <see cref="WatchAsync"/>).</summary>
/// <param name="Bytes">Bytes read before the end.</param>
/// <param name="How">"end of stream" or the socket error.</param>
/// <param name="At">Timestamp (<see cref="Stopwatch.GetTimestamp"/>) of the end.</param>
public sealed record ConnectionEnd(long Bytes, string How, long At)
{
    /// <summary>Reads <paramref name="socket"/> until end of stream or an error, counting bytes.</summary>
    /// <param name="socket">The socket.</param>
    /// <param name="progress">Called with the running byte count after each read.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    public static async Task<ConnectionEnd> WatchAsync(Socket socket, Action<long>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(socket);
        var buffer = new byte[HostStreams.ChunkSize];
        long total = 0;
        try
        {
            while (true)
            {
                int n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                    return new ConnectionEnd(total, "end of stream", Stopwatch.GetTimestamp());
                total += n;
                progress?.Invoke(total);
            }
        }
        catch (SocketException e)
        {
            return new ConnectionEnd(total, $"socket error {e.SocketErrorCode}", Stopwatch.GetTimestamp());
        }
    }
}
