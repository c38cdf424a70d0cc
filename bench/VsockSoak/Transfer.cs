using System.Net.Sockets;
using Virtio.Vsock.Testing;

namespace VsockSoak;

/// <summary>
/// Sends a pattern stream through an <see cref="ISoakEnd"/> in random chunks, and receives one while
/// checking every byte. Owns no state; it must never treat a reset as data or hide a wrong byte.
/// </summary>
internal static class Transfer
{
    /// <summary>Sends <paramref name="size"/> bytes of the stream of <paramref name="seed"/>.</summary>
    /// <returns>Bytes handed to the socket; fewer than <paramref name="size"/> when the connection ended first.</returns>
    public static async Task<long> SendAsync(ISoakEnd end, ulong seed, long size, Memory<byte> buffer, Random random, CancellationToken token)
    {
        var pattern = new PatternStream(seed);
        while (pattern.Position < size)
        {
            int chunk = (int)Math.Min(size - pattern.Position, random.Next(1, buffer.Length + 1));
            long before = pattern.Position;
            pattern.Fill(buffer.Span[..chunk]);
            try
            {
                await end.SendAsync(buffer[..chunk], token).ConfigureAwait(false);
            }
            catch (Exception exception) when (IsConnectionEnd(exception))
            {
                return before;
            }
        }

        return pattern.Position;
    }

    /// <summary>Receives the stream of <paramref name="seed"/> until its end, a reset, or <paramref name="stopAfter"/> bytes.</summary>
    public static async Task<ReceiveResult> ReceiveAsync(ISoakEnd end, ulong seed, Memory<byte> buffer, CancellationToken token, long stopAfter = long.MaxValue)
    {
        var pattern = new PatternStream(seed);
        long bad = -1;
        while (true)
        {
            if (pattern.Position >= stopAfter)
            {
                return new ReceiveResult(pattern.Position, bad, StreamEnd.Stopped);
            }

            int count;
            try
            {
                count = await end.ReceiveAsync(buffer, token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return new ReceiveResult(pattern.Position, bad, StreamEnd.Canceled);
            }
            catch (Exception exception) when (IsConnectionEnd(exception))
            {
                return new ReceiveResult(pattern.Position, bad, token.IsCancellationRequested ? StreamEnd.Canceled : StreamEnd.Reset);
            }

            if (count == 0)
            {
                return new ReceiveResult(pattern.Position, bad, StreamEnd.EndOfStream);
            }

            long wrong = pattern.Verify(buffer.Span[..count]);
            if (wrong >= 0 && bad < 0)
            {
                bad = wrong;
            }
        }
    }

    /// <summary>Reads exactly <paramref name="buffer"/>.Length bytes.</summary>
    /// <returns>False when the stream ended or was reset first.</returns>
    public static async Task<bool> ReadExactlyAsync(ISoakEnd end, Memory<byte> buffer, CancellationToken token)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int count;
            try
            {
                count = await end.ReceiveAsync(buffer[read..], token).ConfigureAwait(false);
            }
            catch (Exception exception) when (IsConnectionEnd(exception))
            {
                return false;
            }

            if (count == 0)
            {
                return false;
            }

            read += count;
        }

        return true;
    }

    /// <summary>Whether <paramref name="exception"/> is a connection ending (reset, closed socket), not a bug.</summary>
    public static bool IsConnectionEnd(Exception exception) =>
        exception is SocketException or GuestSocketException or ObjectDisposedException or IOException
        || (exception is OperationCanceledException);
}
