using System.Net.Sockets;
using System.Text;
using Virtio.Vsock.Backends.Unix;
using Virtio.Vsock.Backends.Unix.Access;
using Virtio.Vsock.Device.Tests.Diagnostics;
using Virtio.Vsock.Device.Tests.Unix;
using Virtio.Vsock.Testing;

namespace Virtio.Vsock.Device.Tests.UnixBackend;

/// <summary>Access rules of the Unix backend: a denied attempt looks exactly like "no listener" to whoever made it, and is counted.</summary>
public sealed class UnixBackendAccessTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static UnixSocketBackendOptions WithRules(string udsPath, VsockAccessRules rules) => new() { UdsPath = udsPath, Access = rules };

    [Fact(Timeout = 30_000)]
    public async Task The_guest_reaches_only_allowed_host_ports_and_a_denied_port_is_refused_like_one_without_listener()
    {
        const ulong cid = 0x53_0001;
        var rules = new VsockAccessRules([new PortRange(7000, 7009)], null);
        await using var h = new UnixBackendHarness(new VsockDeviceOptions { GuestCid = cid }, backendOptions: path => WithRules(path, rules));
        using IDisposable registration = VsockMeter.Register(h.Device, () => h.Backend.Counters.ForMeter());

        // A host program listens on both ports; only the allowed one is reached.
        using Socket allowedListener = h.ListenOnHostPort(7005);
        using Socket deniedListener = h.ListenOnHostPort(8000);
        Task<Socket> accepted = allowedListener.AcceptAsync(Token).AsTask();
        GuestSocket allowed = await h.Guest.ConnectAsync(7005, cancellationToken: Token);
        using (await accepted)
        {
            Assert.Equal(GuestSocketState.Connected, allowed.State);
        }

        Exception denied = await Assert.ThrowsAnyAsync<Exception>(() => h.Guest.ConnectAsync(8000, cancellationToken: Token));
        Exception noListener = await Assert.ThrowsAnyAsync<Exception>(() => h.Guest.ConnectAsync(7006, cancellationToken: Token));
        Assert.Equal(noListener.GetType(), denied.GetType());
        Assert.Equal(noListener.Message.Replace("7006", "8000", StringComparison.Ordinal), denied.Message);
        Assert.False(deniedListener.Poll(0, SelectMode.SelectRead), "the denied host program saw a connection");

        Assert.Equal(1, h.Backend.Counters.GuestConnectsDenied);
        Assert.Equal(2, h.Backend.Counters.GuestConnectsRefused);
        Assert.Equal(1, MeterReader.Collect(cid)["vsock.access.denied/guest/denied"]);
    }

    [Fact(Timeout = 30_000)]
    public async Task Host_programs_reach_guest_ports_by_rule_and_peer_credentials()
    {
        uint uid = GetUid();
        var rules = new VsockAccessRules(null, [new HostToGuestRule(new PortRange(5000, 5000)), new HostToGuestRule(new PortRange(5001, 5001), Uid: uid), new HostToGuestRule(new PortRange(5002, 5002), Uid: uid + 1)]);
        await using var h = new UnixBackendHarness(backendOptions: path => WithRules(path, rules));
        using GuestListener l0 = h.Guest.Listen(5000);
        using GuestListener l1 = h.Guest.Listen(5001);
        using GuestListener l2 = h.Guest.Listen(5002);
        using GuestListener l3 = h.Guest.Listen(5003);

        (Socket s0, _) = await h.ConnectToGuestAsync(5000, token: Token);
        s0.Dispose();
        (Socket s1, _) = await h.ConnectToGuestAsync(5001, token: Token);
        s1.Dispose();

        // Another uid's rule, and a port without rule: closed without a reply, as a guest port nobody listens on.
        Assert.Equal(string.Empty, await ConnectLineAsync(h, 5002));
        Assert.Equal(string.Empty, await ConnectLineAsync(h, 5003));
        Assert.Equal(2, h.Backend.Counters.HostConnectsDenied);
        Assert.Equal(2, h.Backend.Counters.HostConnects);
    }

    private static async Task<string> ConnectLineAsync(UnixBackendHarness h, uint port)
    {
        using Socket socket = await UnixTestSockets.ConnectAsync(h.UdsPath);
        await socket.SendAsync(Encoding.ASCII.GetBytes($"CONNECT {port}\n"), SocketFlags.None, Token);
        return Encoding.ASCII.GetString(await UnixTestSockets.ReadToEndAsync(socket, 10_000));
    }

    private static uint GetUid()
    {
        // Our own credentials, as the backend sees them: a connected socket pair's peer is this process.
        string dir = Directory.CreateTempSubdirectory("vacc").FullName;
        try
        {
            using Socket listener = UnixTestSockets.Listen(Path.Combine(dir, "s"));
            using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            client.Connect(new UnixDomainSocketEndPoint(Path.Combine(dir, "s")));
            using Socket server = listener.Accept();
            PeerCredentials? peer = PeerCredentials.Of(server);
            Assert.NotNull(peer);
            Assert.Equal(Environment.ProcessId, peer.Value.Pid);
            return peer.Value.Uid;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
