using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text;
using Virtio.Vsock;
using Virtio.Vsock.Device;
using VhostUserVsock.Control;

namespace VhostUserVsock.Tests.Cli;

/// <summary>The control socket of the real daemon process (<c>--control</c>), and the <c>connections</c> subcommand that reads it.</summary>
[SupportedOSPlatform("linux")]
public sealed class ControlSocketTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact(Timeout = 120_000)]
    public async Task The_control_socket_is_private_answers_json_lines_and_starts_and_stops_captures()
    {
        using var dir = new TempDirectory();
        string control = dir.File("control.sock");
        string capture = dir.File("vm3.pcap");
        using var notify = new NotifySocket(dir.File("notify"));
        using DaemonProcess daemon = DaemonProcess.Start(
            ["--socket", dir.File("vhost.sock"), "--uds-path", dir.File("vm.vsock"), "--control", control],
            new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = notify.Path });
        Assert.StartsWith("READY=1", await notify.ReceiveAsync(Timeout, () => daemon.Stderr), StringComparison.Ordinal);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(control));
        using (var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await client.ConnectAsync(new UnixDomainSocketEndPoint(control), TestContext.Current.CancellationToken);
            Assert.Equal("{\"ok\":true,\"vms\":[{\"cid\":3,\"rxBuffersAvailable\":0,\"txChainsWaiting\":0,\"siblingConnections\":0,\"queues\":[{\"index\":0,\"name\":\"rx\",\"running\":false,\"broken\":false,\"nextAvail\":0,\"usedIndex\":0,\"notifications\":0,\"repeated\":0,\"suppressed\":0},{\"index\":1,\"name\":\"tx\",\"running\":false,\"broken\":false,\"nextAvail\":0,\"usedIndex\":0,\"notifications\":0,\"repeated\":0,\"suppressed\":0},{\"index\":2,\"name\":\"event\",\"running\":false,\"broken\":false,\"nextAvail\":0,\"usedIndex\":0,\"notifications\":0,\"repeated\":0,\"suppressed\":0}],\"connections\":[]}]}", await AskAsync(client, "{\"command\":\"connections\"}"));
            Assert.Equal("{\"ok\":false,\"error\":\"no running VM with guest CID 9\"}", await AskAsync(client, "{\"command\":\"connections\",\"cid\":9}"));
            Assert.Contains("unknown command: reboot", await AskAsync(client, "{\"command\":\"reboot\"}"), StringComparison.Ordinal);
            Assert.Contains("not a JSON request", await AskAsync(client, "hello"), StringComparison.Ordinal);

            // Two requests in one write get two replies, in order.
            await client.SendAsync(Encoding.UTF8.GetBytes($"{{\"command\":\"capture-start\",\"cid\":3,\"path\":\"{capture}\",\"snapLength\":64}}\n{{\"command\":\"capture-start\",\"cid\":3,\"path\":\"{capture}\"}}\n"), SocketFlags.None);
            Assert.Equal("{\"ok\":true}", await ReadLineAsync(client));
            Assert.Contains("already capturing", await ReadLineAsync(client), StringComparison.Ordinal);
            Assert.True(File.Exists(capture));
            Assert.Contains($"\"capture\":\"{capture}\"", await AskAsync(client, "{\"command\":\"connections\",\"cid\":3}"), StringComparison.Ordinal);
            Assert.Equal("{\"ok\":true,\"captured\":0,\"dropped\":0}", await AskAsync(client, "{\"command\":\"capture-stop\",\"cid\":3}"));
            Assert.Equal(24, new FileInfo(capture).Length); // the pcap header alone: no guest, no packet
        }

        using DaemonProcess table = DaemonProcess.Start(["connections", "--control", control]);
        Assert.Equal(0, await table.WaitForExitAsync(Timeout));
        Assert.Equal(
            "VM 3: 0 connection(s), 0 with siblings, 0 RX buffer(s) available, 0 TX chain(s) waiting\n"
            + "  queue rx: not running\n  queue tx: not running\n  queue event: not running\n",
            table.Stdout);

        PosixSignals.Send(daemon.Id, PosixSignals.SIGTERM);
        Assert.Equal(0, await daemon.WaitForExitAsync(Timeout));
        Assert.False(File.Exists(control), "the control socket was not removed");
    }

    [Fact]
    public void The_table_shows_state_bytes_credit_and_what_a_connection_waits_on()
    {
        ControlVm vm = new()
        {
            Cid = 3,
            RxBuffersAvailable = 12,
            TxChainsWaiting = 2,
            Queues =
            [
                new VsockQueueInfo { Index = 0, Name = "rx", Running = true, AvailIndex = 300, NextAvail = 288, UsedIndex = 288, UsedEvent = 280, Notifications = 40, Suppressed = 9, Repeated = 2 },
                new VsockQueueInfo { Index = 1, Name = "tx", Running = true, AvailIndex = 7, NextAvail = 5, UsedIndex = 5, Notifications = 5 },
                new VsockQueueInfo { Index = 2, Name = "event", Running = false, Broken = true },
            ],
            Connections =
            [
                new VsockConnectionInfo
                {
                    Type = VsockType.Stream, State = "Established", HostPort = 1234, GuestCid = 3, GuestPort = 5000,
                    BytesFromGuest = 300000, BytesToGuest = 10, BufferedToHost = 65536, OurCredit = 0, PeerCredit = 262144,
                    PeerBufAlloc = 262144, Stall = VsockStallReason.HostSocket, StalledMs = 1520,
                },
                new VsockConnectionInfo
                {
                    Type = VsockType.SeqPacket, State = "Established", HostPort = 1235, GuestCid = 3, GuestPort = 5001,
                    OurCredit = 65536, PeerCredit = 0, PeerBufAlloc = 4096, Stall = VsockStallReason.PeerCredit, StalledMs = 7,
                },
                new VsockConnectionInfo
                {
                    Type = VsockType.Stream, State = "Established", HostPort = 1236, GuestCid = 3, GuestPort = 5002,
                    OurCredit = 65536, PeerCredit = 4096, PeerBufAlloc = 4096,
                },
            ],
        };

        Assert.Equal(
            "VM 3: 3 connection(s), 0 with siblings, 12 RX buffer(s) available, 2 TX chain(s) waiting\n"
            + "  queue rx: avail 300, taken 288, used 288, interrupt wanted at 280, 40 notified, 9 suppressed, 2 repeated\n"
            + "  queue tx: avail 7, taken 5, used 5, 5 notified, 0 suppressed, 0 repeated\n"
            + "  queue event: stopped after a ring error\n"
            + "  TYPE       STATE        HOST PORT  GUEST PORT  FROM GUEST  TO GUEST  BUFFERED  OUR CREDIT  PEER CREDIT  STALLED ON   FOR (MS)\n"
            + "  Stream     Established  1234       5000        300000      10        65536     0           262144       host socket  1520\n"
            + "  SeqPacket  Established  1235       5001        0           0         0         65536       0            peer credit  7\n"
            + "  Stream     Established  1236       5002        0           0         0         65536       4096         -            -\n",
            ConnectionsCommand.Table([vm]));
    }

    private static async Task<string> AskAsync(Socket client, string request)
    {
        await client.SendAsync(Encoding.UTF8.GetBytes(request + "\n"), SocketFlags.None);
        return await ReadLineAsync(client);
    }

    private static async Task<string> ReadLineAsync(Socket client)
    {
        var line = new List<byte>();
        byte[] one = new byte[1];
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(Timeout);
        while (await client.ReceiveAsync(one, SocketFlags.None, cts.Token) == 1 && one[0] != '\n')
        {
            line.Add(one[0]);
        }

        return Encoding.UTF8.GetString([.. line]);
    }
}
