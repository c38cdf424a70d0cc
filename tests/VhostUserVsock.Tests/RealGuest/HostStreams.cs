using System.Buffers;
using System.Diagnostics;
using System.IO.Hashing;
using System.Net.Sockets;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>Host-side stream traffic over a connected Unix socket, in vsocktest's pattern and checksum.</summary>
public static class HostStreams
{
    /// <summary>The I/O size used by the host side.</summary>
    public const int ChunkSize = 256 * 1024;

    /// <summary>
    /// Reads until end of stream. With <paramref name="seed"/>, checks the pattern (the first
    /// mismatch is reported in <see cref="TransferStats.MismatchAt"/>).
    /// </summary>
    public static async Task<TransferStats> ReceiveToEndAsync(Socket socket, uint? seed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(socket);
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            var crc = new Crc32();
            long total = 0;
            long mismatch = -1;
            var clock = Stopwatch.StartNew();
            while (true)
            {
                int n = await socket.ReceiveAsync(buffer.AsMemory(0, ChunkSize), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                    break;
                var data = buffer.AsSpan(0, n);
                crc.Append(data);
                if (seed is { } s && mismatch < 0)
                {
                    int bad = VsockPattern.FindMismatch(data, total, s);
                    if (bad >= 0)
                        mismatch = total + bad;
                }
                total += n;
            }
            return new TransferStats(total, crc.GetCurrentHashAsUInt32(), mismatch, clock.Elapsed);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Writes <paramref name="count"/> pattern bytes, then shuts down the write side when
    /// <paramref name="shutdown"/> is set.
    /// </summary>
    public static async Task<TransferStats> SendPatternAsync(Socket socket, long count, uint seed, bool shutdown, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(socket);
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            var crc = new Crc32();
            long sent = 0;
            var clock = Stopwatch.StartNew();
            while (sent < count)
            {
                int n = (int)Math.Min(ChunkSize, count - sent);
                VsockPattern.Fill(buffer.AsSpan(0, n), sent, seed);
                crc.Append(buffer.AsSpan(0, n));
                int off = 0;
                while (off < n)
                    off += await socket.SendAsync(buffer.AsMemory(off, n - off), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                sent += n;
            }
            if (shutdown)
                socket.Shutdown(SocketShutdown.Send);
            return new TransferStats(sent, crc.GetCurrentHashAsUInt32(), -1, clock.Elapsed);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Sends <paramref name="data"/> whole.</summary>
    public static async Task SendAllAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(socket);
        while (data.Length > 0)
        {
            int n = await socket.SendAsync(data, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            data = data[n..];
        }
    }

    /// <summary>Echoes everything read back until end of stream, then shuts down the write side. Returns the bytes echoed.</summary>
    public static async Task<long> EchoToEndAsync(Socket socket, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(socket);
        var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            long total = 0;
            while (true)
            {
                int n = await socket.ReceiveAsync(buffer.AsMemory(0, ChunkSize), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                    break;
                await SendAllAsync(socket, buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                total += n;
            }
            socket.Shutdown(SocketShutdown.Send);
            return total;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// The client side of an echo: sends <paramref name="count"/> pattern bytes and shuts down the
    /// write side while reading the echo back to end of stream (checked against the same pattern).
    /// </summary>
    public static async Task<(TransferStats Sent, TransferStats Received)> EchoClientAsync(Socket socket, long count, uint seed, CancellationToken cancellationToken)
    {
        var receive = ReceiveToEndAsync(socket, seed, cancellationToken);
        var send = SendPatternAsync(socket, count, seed, shutdown: true, cancellationToken);
        try
        {
            await send.ConfigureAwait(false);
        }
        catch
        {
            // the receive side fails too once the socket is gone; report the send error
            socket.Dispose();
            await Task.WhenAny(receive).ConfigureAwait(false);
            throw;
        }
        return (await send.ConfigureAwait(false), await receive.ConfigureAwait(false));
    }
}
