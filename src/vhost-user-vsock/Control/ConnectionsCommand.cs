using System.CommandLine;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Virtio.Vsock.Device;

namespace VhostUserVsock.Control;

/// <summary>
/// <c>vhost-user-vsock connections --control PATH [--cid N] [--json]</c>: asks a running daemon's control socket
/// for its connections and prints them as a table (or the raw JSON reply). A client only; must never change the
/// daemon's state.
/// </summary>
public sealed class ConnectionsCommand
{
    /// <summary>Creates the subcommand.</summary>
    public ConnectionsCommand()
    {
        Command = new Command("connections", "Print a running daemon's connections (state, bytes, credit, stall reason and duration) from its control socket.")
        {
            Control, Cid, Json,
        };
    }

    /// <summary>The subcommand.</summary>
    public Command Command { get; }

    /// <summary><c>--control PATH</c>.</summary>
    public Option<string> Control { get; } = new("--control") { HelpName = "PATH", Description = "The daemon's control socket.", Required = true };

    /// <summary><c>--cid N</c>.</summary>
    public Option<ulong?> Cid { get; } = new("--cid") { HelpName = "N", Description = "Only this VM." };

    /// <summary><c>--json</c>.</summary>
    public Option<bool> Json { get; } = new("--json") { Description = "Print the daemon's JSON reply as it is." };

    /// <summary>Runs the request and prints the result.</summary>
    /// <param name="result">The parse result.</param>
    /// <param name="output">Where the table goes.</param>
    /// <param name="error">Where an error line goes.</param>
    /// <param name="token">Cancels the request.</param>
    /// <returns>0 on success, 1 when the daemon could not be asked or refused.</returns>
    public async Task<int> RunAsync(ParseResult result, TextWriter output, TextWriter error, CancellationToken token)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        string path = result.GetValue(Control) ?? string.Empty;
        var request = new ControlRequest { Command = "connections", Cid = result.GetValue(Cid) };
        string reply;
        try
        {
            reply = await AskAsync(path, JsonSerializer.Serialize(request, ControlJson.Default.ControlRequest), token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
        {
            await error.WriteLineAsync($"vhost-user-vsock: error: cannot ask the control socket {path}: {ex.Message}").ConfigureAwait(false);
            return 1;
        }

        if (result.GetValue(Json))
        {
            await output.WriteLineAsync(reply).ConfigureAwait(false);
            return 0;
        }

        ControlReply? parsed = JsonSerializer.Deserialize(reply, ControlJson.Default.ControlReply);
        if (parsed is not { Ok: true, Vms: { } vms })
        {
            await error.WriteLineAsync($"vhost-user-vsock: error: {parsed?.Error ?? "bad reply"}").ConfigureAwait(false);
            return 1;
        }

        await output.WriteAsync(Table(vms)).ConfigureAwait(false);
        return 0;
    }

    /// <summary>Formats VMs and their connections as a fixed-width table.</summary>
    /// <param name="vms">The VMs.</param>
    /// <returns>The table, one line per connection, a header per VM.</returns>
    public static string Table(IReadOnlyList<ControlVm> vms)
    {
        ArgumentNullException.ThrowIfNull(vms);
        var text = new StringBuilder();
        foreach (ControlVm vm in vms)
        {
            text.Append(CultureInfo.InvariantCulture, $"VM {vm.Cid}: {vm.Connections?.Count.ToString(CultureInfo.InvariantCulture) ?? "?"} connection(s), {vm.SiblingConnections} with siblings, {vm.RxBuffersAvailable} RX buffer(s) available, {vm.TxChainsWaiting} TX chain(s) waiting{(vm.Capture is null ? string.Empty : ", capturing to " + vm.Capture)}\n");
            foreach (VsockQueueInfo queue in vm.Queues ?? [])
            {
                text.Append(CultureInfo.InvariantCulture, $"  queue {queue.Name}: {QueueState(queue)}\n");
            }

            if (vm.Connections is not { Count: > 0 } connections)
            {
                continue;
            }

            string[] header = ["TYPE", "STATE", "HOST PORT", "GUEST PORT", "FROM GUEST", "TO GUEST", "BUFFERED", "OUR CREDIT", "PEER CREDIT", "STALLED ON", "FOR (MS)"];
            var rows = new List<string[]> { header };
            rows.AddRange(connections.Select(c => new[]
            {
                c.Type.ToString(), c.State, Number(c.HostPort), Number(c.GuestPort), Number(c.BytesFromGuest), Number(c.BytesToGuest),
                Number(c.BufferedToHost), Number(c.OurCredit), Number(c.PeerCredit), Stall(c.Stall),
                c.Stall == VsockStallReason.None ? "-" : c.StalledMs.ToString(CultureInfo.InvariantCulture),
            }));
            int[] widths = [.. Enumerable.Range(0, header.Length).Select(i => rows.Max(r => r[i].Length))];
            foreach (string[] row in rows)
            {
                text.Append("  ").Append(string.Join("  ", row.Select((cell, i) => cell.PadRight(widths[i]))).TrimEnd()).Append('\n');
            }
        }

        return text.ToString();
    }

    /// <summary>One queue's line: where the driver and the device are, and the notifications sent, suppressed and repeated.</summary>
    private static string QueueState(VsockQueueInfo queue)
    {
        if (!queue.Running)
        {
            return queue.Broken ? "stopped after a ring error" : "not running";
        }

        string avail = queue.AvailIndex is ushort index ? index.ToString(CultureInfo.InvariantCulture) : "?";
        string wanted = queue.UsedEvent is ushort usedEvent ? $", interrupt wanted at {usedEvent}" : string.Empty;
        return string.Create(CultureInfo.InvariantCulture,
            $"avail {avail}, taken {queue.NextAvail}, used {queue.UsedIndex}{wanted}, {queue.Notifications} notified, {queue.Suppressed} suppressed, {queue.Repeated} repeated{(queue.Broken ? ", broken" : string.Empty)}");
    }

    private static string Number(ulong value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Stall(VsockStallReason reason) => reason switch
    {
        VsockStallReason.PeerCredit => "peer credit",
        VsockStallReason.RxBuffers => "rx buffers",
        VsockStallReason.HostSocket => "host socket",
        _ => "-",
    };

    private static async Task<string> AskAsync(string path, string request, CancellationToken token)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), timeout.Token).ConfigureAwait(false);
        await socket.SendAsync(Encoding.UTF8.GetBytes(request + "\n"), SocketFlags.None, timeout.Token).ConfigureAwait(false);
        var reply = new MemoryStream();
        byte[] buffer = new byte[16 * 1024];
        while (true)
        {
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            if (n == 0)
            {
                throw new IOException("the daemon closed the connection without a reply");
            }

            int newline = Array.IndexOf(buffer, (byte)'\n', 0, n);
            reply.Write(buffer, 0, newline < 0 ? n : newline);
            if (newline >= 0)
            {
                return Encoding.UTF8.GetString(reply.GetBuffer(), 0, (int)reply.Length);
            }

            if (reply.Length > 64 * 1024 * 1024)
            {
                throw new IOException("the reply is too long");
            }
        }
    }
}
