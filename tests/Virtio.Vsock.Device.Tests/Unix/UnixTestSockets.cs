using System.Net.Sockets;

namespace Virtio.Vsock.Device.Tests.Unix;

/// <summary>
/// Test helpers: a short-lived temp directory for socket files (short paths: sun_path is 108 bytes)
/// and connected Unix socket pairs made through a throwaway listener. Never touches AF_VSOCK.
/// </summary>
internal sealed partial class UnixTestSockets : IDisposable
{
    private int _next;

    public UnixTestSockets()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("vsu").FullName;
    }

    public string Directory { get; }

    /// <summary>A fresh path in the temp directory.</summary>
    public string NewPath(string name = "s") => Path.Combine(Directory, name + Interlocked.Increment(ref _next));

    public static Socket NewSocket(SocketType type) => new(AddressFamily.Unix, type, ProtocolType.Unspecified);

    /// <summary>Binds and listens a socket at <paramref name="path"/>.</summary>
    public static Socket Listen(string path, SocketType type = SocketType.Stream, int backlog = 16)
    {
        Socket socket = NewSocket(type);
        socket.Bind(new UnixDomainSocketEndPoint(path));
        socket.Listen(backlog);
        return socket;
    }

    /// <summary>A connected pair: (client, server side).</summary>
    public async Task<(Socket Client, Socket Server)> PairAsync(SocketType type = SocketType.Stream)
    {
        string path = NewPath("pair");
        using Socket listener = Listen(path, type);
        Socket client = NewSocket(type);
        await client.ConnectAsync(new UnixDomainSocketEndPoint(path));
        Socket server = await listener.AcceptAsync();
        File.Delete(path);
        return (client, server);
    }

    /// <summary>
    /// Connects a client to <paramref name="path"/>, retrying while the listener's backlog is full
    /// (a non-blocking Unix connect reports EAGAIN then), for at most 5 s.
    /// </summary>
    public static async Task<Socket> ConnectAsync(string path, SocketType type = SocketType.Stream)
    {
        long until = Environment.TickCount64 + 20_000; // a generous deadline for the listener to come up
        while (true)
        {
            Socket client = NewSocket(type);
            try
            {
                await client.ConnectAsync(new UnixDomainSocketEndPoint(path));
                return client;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.WouldBlock && Environment.TickCount64 < until)
            {
                client.Dispose();
                await Task.Delay(5);
            }
            catch
            {
                client.Dispose();
                throw;
            }
        }
    }

    /// <summary>
    /// Leaves a stale socket file at <paramref name="path"/>, as a crashed process would: bound
    /// elsewhere, renamed into place, then the socket closed (the runtime's unlink-on-dispose
    /// misses the renamed file).
    /// </summary>
    public void CreateStaleSocketFile(string path)
    {
        string temporary = NewPath("tmp");
        using (Socket dead = NewSocket(SocketType.Stream))
        {
            dead.Bind(new UnixDomainSocketEndPoint(temporary));
            File.Move(temporary, path);
        }
    }

    /// <summary>Reads until <paramref name="count"/> bytes or end of stream, with a deadline.</summary>
    public static async Task<byte[]> ReadExactlyOrEofAsync(Socket socket, int count, int timeoutMs = 5000)
    {
        using var cts = new CancellationTokenSource(timeoutMs);
        var result = new List<byte>();
        byte[] buffer = new byte[4096];
        while (result.Count < count)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(0, Math.Min(buffer.Length, count - result.Count)), SocketFlags.None, cts.Token);
            if (n == 0)
            {
                break;
            }

            result.AddRange(buffer.AsSpan(0, n));
        }

        return result.ToArray();
    }

    /// <summary>Reads to end of stream (or reset), with a deadline; returns what was read.</summary>
    public static async Task<byte[]> ReadToEndAsync(Socket socket, int timeoutMs = 5000)
    {
        using var cts = new CancellationTokenSource(timeoutMs);
        var result = new List<byte>();
        byte[] buffer = new byte[4096];
        while (true)
        {
            int n;
            try
            {
                n = await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
            {
                break;
            }

            if (n == 0)
            {
                break;
            }

            result.AddRange(buffer.AsSpan(0, n));
        }

        return result.ToArray();
    }

    /// <summary>
    /// Bytes written on <paramref name="socket"/> that its peer has not read yet (<c>SIOCOUTQ</c>): lets a test wait
    /// until the peer consumed a write instead of sleeping and hoping it did.
    /// </summary>
    public static int UnreadByPeer(Socket socket)
    {
        int result = IoctlInt((int)socket.SafeHandle.DangerousGetHandle(), 0x5411 /* SIOCOUTQ */, out int value);
        Assert.True(result == 0, $"ioctl(SIOCOUTQ) failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
        return value;
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int IoctlInt(int fd, ulong request, out int value);

    /// <summary>Polls <paramref name="condition"/> until true or the deadline.</summary>
    public static async Task<bool> EventuallyAsync(Func<bool> condition, int timeoutMs = 20_000)
    {
        long until = Environment.TickCount64 + timeoutMs;
        while (!condition())
        {
            if (Environment.TickCount64 > until)
            {
                return false;
            }

            await Task.Delay(10); // a poll interval, bounded by the deadline above
        }

        return true;
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
