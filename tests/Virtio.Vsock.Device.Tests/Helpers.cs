using System.IO.Hashing;

namespace Virtio.Vsock.Device.Tests;

internal static class Helpers
{
    public static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    public static async Task<byte[]> ReadAll(Stream stream, CancellationToken token)
    {
        var result = new MemoryStream();
        var buffer = new byte[65536];
        int n;
        while ((n = await stream.ReadAsync(buffer, token)) > 0)
        {
            result.Write(buffer, 0, n);
        }

        return result.ToArray();
    }

    public static async Task<byte[]> ReadAll(Virtio.Vsock.Testing.GuestSocket socket, CancellationToken token)
    {
        var result = new MemoryStream();
        var buffer = new byte[65536];
        int n;
        while ((n = await socket.ReceiveAsync(buffer, token)) > 0)
        {
            result.Write(buffer, 0, n);
        }

        return result.ToArray();
    }

    public static async Task<byte[]> ReadExactly(Stream stream, int count, CancellationToken token)
    {
        var buffer = new byte[count];
        await stream.ReadExactlyAsync(buffer, token);
        return buffer;
    }

    public static async Task<byte[]> ReadExactly(Virtio.Vsock.Testing.GuestSocket socket, int count, CancellationToken token)
    {
        var buffer = new byte[count];
        int total = 0;
        while (total < count)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(total), token);
            if (n == 0)
            {
                throw new EndOfStreamException($"EOF after {total} of {count} bytes.");
            }

            total += n;
        }

        return buffer;
    }

    /// <summary>Streams <paramref name="total"/> pseudo-random bytes in 64 KiB writes and returns their CRC-32.</summary>
    public static async Task<uint> SendPattern(Func<ReadOnlyMemory<byte>, Task> write, long total, int seed)
    {
        var crc = new Crc32();
        var buffer = new byte[65536];
        var random = new Random(seed);
        long sent = 0;
        while (sent < total)
        {
            int chunk = (int)Math.Min(buffer.Length, total - sent);
            random.NextBytes(buffer.AsSpan(0, chunk));
            crc.Append(buffer.AsSpan(0, chunk));
            await write(buffer.AsMemory(0, chunk));
            sent += chunk;
        }

        return crc.GetCurrentHashAsUInt32();
    }

    /// <summary>Reads to EOF and returns the count and CRC-32.</summary>
    public static async Task<(long Count, uint Crc)> ReceiveAndHash(Func<Memory<byte>, Task<int>> read)
    {
        var crc = new Crc32();
        var buffer = new byte[65536];
        long count = 0;
        int n;
        while ((n = await read(buffer)) > 0)
        {
            crc.Append(buffer.AsSpan(0, n));
            count += n;
        }

        return (count, crc.GetCurrentHashAsUInt32());
    }
}
