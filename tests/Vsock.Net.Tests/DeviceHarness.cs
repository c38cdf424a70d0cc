using System.Net.Sockets;
using System.Text;
using Virtio.Vsock.Device;
using Virtio.Vsock.Device.Backends;
using Virtio.Vsock.Backends.Unix;
using Virtio.Vsock.Testing;

namespace Vsock.Net.Tests;

/// <summary>
/// A real <see cref="VsockDevice"/> driven by the guest simulator with a given backend (the Unix one, with
/// its <c>uds_path</c> in a fresh temp directory, or the in-process one). Owns all of them and the directory.
/// </summary>
internal sealed class DeviceHarness : IAsyncDisposable
{
    private readonly IVsockBackend _backend;

    private DeviceHarness(IVsockBackend backend, string? directory)
    {
        _backend = backend;
        Directory = directory;
        (Guest, Device) = GuestSimulator.Create(new VsockDeviceOptions(), backend);
    }

    public string? Directory { get; }

    public string UdsPath => Path.Combine(Directory!, "v.sock");

    public GuestSimulator Guest { get; }

    public VsockDevice Device { get; }

    public static DeviceHarness WithUnixBackend()
    {
        string dir = System.IO.Directory.CreateTempSubdirectory("vnd").FullName;
        var backend = new UnixSocketBackend(new UnixSocketBackendOptions { UdsPath = Path.Combine(dir, "v.sock") });
        var harness = new DeviceHarness(backend, dir);
        backend.Start();
        return harness;
    }

    public static DeviceHarness With(IVsockBackend backend) => new(backend, null);

    public async ValueTask DisposeAsync()
    {
        if (_backend is IAsyncDisposable d)
        {
            await d.DisposeAsync();
        }
        else if (_backend is IDisposable s)
        {
            s.Dispose();
        }

        Device.Dispose();
        Guest.Dispose();
        if (Directory is not null)
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

    /// <summary>
    /// A minimal HTTP/1.1 server on one guest connection: answers each request with
    /// <c>200</c> and <paramref name="respond"/>(method, path, body) until the client closes. Bodies stay small
    /// (the simulator does not resume sending on credit updates carried by data packets).
    /// </summary>
    public static async Task ServeHttpAsync(GuestSocket socket, Func<string, string, byte[], string> respond, CancellationToken token)
    {
        var pending = new List<byte>();
        byte[] buffer = new byte[8192];
        while (true)
        {
            int headerEnd;
            while ((headerEnd = IndexOf(pending, "\r\n\r\n"u8)) < 0)
            {
                int n = await socket.ReceiveAsync(buffer, token);
                if (n == 0)
                {
                    await socket.CloseAsync();
                    return;
                }

                pending.AddRange(buffer.AsSpan(0, n));
            }

            string head = Encoding.ASCII.GetString([.. pending.GetRange(0, headerEnd)]);
            pending.RemoveRange(0, headerEnd + 4);
            string[] lines = head.Split("\r\n");
            string[] requestLine = lines[0].Split(' ');
            int length = lines.Skip(1)
                .Where(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                .Select(l => int.Parse(l.AsSpan(15).Trim(), System.Globalization.CultureInfo.InvariantCulture))
                .FirstOrDefault();
            while (pending.Count < length)
            {
                int n = await socket.ReceiveAsync(buffer, token);
                if (n == 0)
                {
                    return;
                }

                pending.AddRange(buffer.AsSpan(0, n));
            }

            byte[] body = [.. pending.GetRange(0, length)];
            pending.RemoveRange(0, length);
            byte[] content = Encoding.UTF8.GetBytes(respond(requestLine[0], requestLine[1], body));
            byte[] response = [.. Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {content.Length}\r\n\r\n"), .. content];
            await socket.SendAsync(response, token);
        }
    }

    private static int IndexOf(List<byte> bytes, ReadOnlySpan<byte> pattern)
    {
        for (int i = 0; i + pattern.Length <= bytes.Count; i++)
        {
            int k = 0;
            while (k < pattern.Length && bytes[i + k] == pattern[k])
            {
                k++;
            }

            if (k == pattern.Length)
            {
                return i;
            }
        }

        return -1;
    }
}
