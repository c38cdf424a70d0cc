using System.Net.Sockets;
using System.Text;
using Virtio.Vsock.Backends.Unix;
using Virtio.Vsock.Device.Tests.Unix;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.UnixBackend;

/// <summary>
/// A real <see cref="VsockDevice"/> driven by the guest simulator, with a <see cref="UnixSocketBackend"/>
/// listening in a fresh temp directory (short paths: sun_path is 108 bytes). Owns all of them and the
/// directory; disposes the backend first (as a test of its own), then the device and the guest. A test may put a
/// backend of its own between the device and the Unix backend (<c>wrapBackend</c>), e.g. to watch its endpoints.
/// </summary>
internal sealed class UnixBackendHarness : IAsyncDisposable
{
    private bool _backendDisposed;

    public UnixBackendHarness(
        VsockDeviceOptions? deviceOptions = null,
        GuestSimulatorOptions? guestOptions = null,
        Func<string, UnixSocketBackendOptions>? backendOptions = null,
        Func<IVsockBackend, IVsockBackend>? wrapBackend = null)
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("vub").FullName;
        UdsPath = Path.Combine(Directory, "v.sock");
        Backend = new UnixSocketBackend(backendOptions?.Invoke(UdsPath) ?? new UnixSocketBackendOptions { UdsPath = UdsPath });
        DeviceOptions = deviceOptions ?? new VsockDeviceOptions();
        (Guest, Device) = GuestSimulator.Create(DeviceOptions, wrapBackend?.Invoke(Backend) ?? Backend, guestOptions);
        Backend.Start();
    }

    public string Directory { get; }

    public string UdsPath { get; }

    public string SeqPacketPath => UdsPath + ".seqpacket";

    public UnixSocketBackend Backend { get; }

    public VsockDeviceOptions DeviceOptions { get; }

    public GuestSimulator Guest { get; }

    public VsockDevice Device { get; }

    /// <summary>The socket path a guest connection to host port <paramref name="port"/> goes to.</summary>
    public string HostPortPath(uint port) => UdsPath + "_" + port;

    /// <summary>A host program listening on host port <paramref name="port"/>.</summary>
    public Socket ListenOnHostPort(uint port, SocketType type = SocketType.Stream, int backlog = 256) =>
        UnixTestSockets.Listen(HostPortPath(port), type, backlog);

    /// <summary>
    /// A host program connecting to the guest: connects to <see cref="UdsPath"/>, writes
    /// <c>CONNECT port\n</c> followed by <paramref name="extra"/> in the same write, and reads the
    /// <c>OK n\n</c> reply one byte at a time (so nothing after it is consumed).
    /// </summary>
    /// <returns>The connected socket and the host-side port from the reply.</returns>
    public async Task<(Socket Socket, uint LocalPort)> ConnectToGuestAsync(uint guestPort, ReadOnlyMemory<byte> extra = default, CancellationToken token = default)
    {
        Socket socket = await UnixTestSockets.ConnectAsync(UdsPath);
        try
        {
            byte[] line = Encoding.ASCII.GetBytes($"CONNECT {guestPort}\n");
            byte[] request = [.. line, .. extra.Span];
            await socket.SendAsync(request, SocketFlags.None, token);
            string reply = await ReadLineAsync(socket, token);
            Assert.StartsWith("OK ", reply, StringComparison.Ordinal);
            return (socket, uint.Parse(reply.AsSpan(3), provider: System.Globalization.CultureInfo.InvariantCulture));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>The same over the SEQPACKET listener: the command and the reply are one message each.</summary>
    public async Task<(Socket Socket, uint LocalPort)> ConnectToGuestSeqPacketAsync(uint guestPort, CancellationToken token = default)
    {
        Socket socket = await UnixTestSockets.ConnectAsync(SeqPacketPath, SocketType.Seqpacket);
        try
        {
            await socket.SendAsync(Encoding.ASCII.GetBytes($"CONNECT {guestPort}\n"), SocketFlags.None, token);
            byte[] buffer = new byte[64];
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, token);
            string reply = Encoding.ASCII.GetString(buffer, 0, n);
            Assert.Matches(@"^OK \d+\n$", reply);
            return (socket, uint.Parse(reply.AsSpan(3, reply.Length - 4), provider: System.Globalization.CultureInfo.InvariantCulture));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Reads a line (without the <c>\n</c>) one byte at a time; empty string at end of stream.</summary>
    public static async Task<string> ReadLineAsync(Socket socket, CancellationToken token)
    {
        var line = new StringBuilder();
        byte[] one = new byte[1];
        while (line.Length < 64)
        {
            int n = await socket.ReceiveAsync(one, SocketFlags.None, token);
            if (n == 0 || one[0] == (byte)'\n')
            {
                break;
            }

            line.Append((char)one[0]);
        }

        return line.ToString();
    }

    /// <summary>Disposes the backend now (tests of DisposeAsync); the harness then skips it.</summary>
    public async Task DisposeBackendAsync()
    {
        _backendDisposed = true;
        await Backend.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_backendDisposed)
        {
            await Backend.DisposeAsync();
        }

        Device.Dispose();
        Guest.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
