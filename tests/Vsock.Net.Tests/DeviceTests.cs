using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Virtio.Vsock.Device.Backends.InProcess;
using Virtio.Vsock.Testing;

namespace Vsock.Net.Tests;

/// <summary>
/// Vsock.Net's host side against this project's real device with the guest simulator: the hybrid
/// client and host listener through the Unix backend, and the same HTTP handler through the Unix and
/// the in-process backends.
/// </summary>
public sealed class DeviceTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact(Timeout = 30_000)]
    public async Task Hybrid_client_reaches_a_guest_listener_and_gets_its_host_port()
    {
        await using var h = DeviceHarness.WithUnixBackend();
        using GuestListener listener = h.Guest.Listen(5000);
        Task<GuestSocket> accept = listener.AcceptAsync(Token).AsTask();
        HybridVsockConnection connection = await HybridVsockClient.ConnectWithPortAsync(h.UdsPath, 5000, cancellationToken: Token);
        using Socket host = connection.Socket;
        GuestSocket guest = await accept.WaitAsync(TimeSpan.FromSeconds(10), Token);
        Assert.Equal(connection.HostPort, guest.PeerPort);

        await host.SendAsync("to the guest"u8.ToArray(), SocketFlags.None, Token);
        byte[] got = new byte[12];
        int read = 0;
        while (read < got.Length)
        {
            read += await guest.ReceiveAsync(got.AsMemory(read), Token);
        }

        Assert.Equal("to the guest", Encoding.ASCII.GetString(got));
        await guest.SendAsync("to the host"u8.ToArray(), Token);
        using var stream = new NetworkStream(host);
        byte[] back = new byte[11];
        await stream.ReadExactlyAsync(back, Token);
        Assert.Equal("to the host", Encoding.ASCII.GetString(back));
    }

    [Fact(Timeout = 30_000)]
    public async Task Hybrid_client_reports_a_refusal_when_nothing_listens_in_the_guest()
    {
        await using var h = DeviceHarness.WithUnixBackend();
        var e = await Assert.ThrowsAsync<HybridVsockConnectException>(() => HybridVsockClient.ConnectAsync(h.UdsPath, 4999, cancellationToken: Token));
        Assert.Equal(HybridVsockConnectError.Refused, e.Error);
    }

    [Fact(Timeout = 30_000)]
    public async Task Host_listener_on_uds_path_P_accepts_guest_connections_to_host_port_P()
    {
        await using var h = DeviceHarness.WithUnixBackend();
        using var listener = new HybridVsockHostListener(h.UdsPath, 6000);
        Assert.Equal(h.UdsPath + "_6000", listener.Path);
        Task<Socket> accept = listener.AcceptAsync(Token);
        GuestSocket guest = await h.Guest.ConnectAsync(6000, cancellationToken: Token);
        using Socket host = await accept.WaitAsync(TimeSpan.FromSeconds(10), Token);
        await guest.SendAsync("hello host"u8.ToArray(), Token);
        using var stream = new NetworkStream(host);
        byte[] got = new byte[10];
        await stream.ReadExactlyAsync(got, Token);
        Assert.Equal("hello host", Encoding.ASCII.GetString(got));
        listener.Dispose();
        Assert.False(File.Exists(h.UdsPath + "_6000"));
    }

    [Fact(Timeout = 30_000)]
    public async Task Host_listener_replaces_a_stale_socket_file_but_never_a_live_one()
    {
        string dir = Directory.CreateTempSubdirectory("vnt").FullName;
        try
        {
            string uds = Path.Combine(dir, "v.sock");
            using (var stale = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            {
                // The runtime removes the file of a bound socket on dispose: move it away first, so a
                // socket file nobody listens on stays behind (as after a crash).
                stale.Bind(new UnixDomainSocketEndPoint(uds + ".tmp"));
                File.Move(uds + ".tmp", uds + "_7000");
            }

            Assert.True(File.Exists(uds + "_7000"));
            using var listener = new HybridVsockHostListener(uds, 7000);
            Assert.Throws<SocketException>(() => new HybridVsockHostListener(uds, 7000));
            Assert.True(File.Exists(uds + "_7000"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task HttpClient_through_the_unix_backend_reaches_a_guest_http_server()
    {
        await using var h = DeviceHarness.WithUnixBackend();
        using GuestListener listener = h.Guest.Listen(8080);
        Task server = Task.Run(async () =>
        {
            GuestSocket connection = await listener.AcceptAsync(Token);
            await DeviceHarness.ServeHttpAsync(connection, (method, path, body) =>
                $"{method} {path} {Convert.ToHexStringLower(SHA256.HashData(body))}", Token);
        }, Token);

        using var http = new HttpClient(VsockHttpHandler.ForHybridVsock(h.UdsPath, 8080)) { BaseAddress = new Uri("http://guest") };
        Assert.Equal($"GET /hello {Convert.ToHexStringLower(SHA256.HashData([]))}", await http.GetStringAsync("/hello", Token));
        byte[] body = RandomNumberGenerator.GetBytes(20_000);
        using HttpResponseMessage response = await http.PostAsync("/sha256", new ByteArrayContent(body), Token);
        Assert.Equal($"POST /sha256 {Convert.ToHexStringLower(SHA256.HashData(body))}", await response.Content.ReadAsStringAsync(Token));
        http.Dispose();
        await server.WaitAsync(TimeSpan.FromSeconds(10), Token);
    }

    [Fact(Timeout = 30_000)]
    public async Task The_same_http_handler_works_over_the_in_process_backend()
    {
        var backend = new InProcessBackend();
        await using var h = DeviceHarness.With(backend);
        using GuestListener listener = h.Guest.Listen(8080);
        Task server = Task.Run(async () =>
        {
            GuestSocket connection = await listener.AcceptAsync(Token);
            await DeviceHarness.ServeHttpAsync(connection, (method, path, body) => $"{method} {path} {body.Length} via in-process", Token);
        }, Token);

        int connects = 0;
        using var http = new HttpClient(VsockHttpHandler.ForStream(async token =>
        {
            Interlocked.Increment(ref connects);
            return await backend.ConnectAsync(8080, cancellationToken: token);
        }))
        { BaseAddress = new Uri("http://guest") };
        Assert.Equal("GET /a 0 via in-process", await http.GetStringAsync("/a", Token));
        using HttpResponseMessage response = await http.PostAsync("/b", new ByteArrayContent(new byte[5000]), Token);
        Assert.Equal("POST /b 5000 via in-process", await response.Content.ReadAsStringAsync(Token));
        Assert.Equal(1, connects); // one keep-alive connection for both requests
        http.Dispose();
        await server.WaitAsync(TimeSpan.FromSeconds(10), Token);
    }
}
