using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text.RegularExpressions;
using VhostUserVsock.Systemd;

namespace VhostUserVsock.Tests.Cli;

/// <summary>
/// systemd's protocols, with the real daemon process: <c>Type=notify</c> readiness on a fake <c>NOTIFY_SOCKET</c>
/// (<c>READY=1</c> only once the sockets accept, <c>STOPPING=1</c> on SIGTERM) and socket activation with
/// <c>LISTEN_FDS</c> as systemd-socket-activate (the systemd package) passes them.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed partial class SystemdTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact(Timeout = 90_000)]
    public async Task Ready_comes_only_once_the_sockets_accept_and_sigterm_sends_stopping_then_exits_0()
    {
        using var dir = new TempDirectory();
        string socket = dir.File("vhost.sock");
        string uds = dir.File("vm.vsock");
        using var notify = new NotifySocket(dir.File("notify"));
        using DaemonProcess daemon = DaemonProcess.Start(
            ["--socket", socket, "--uds-path", uds, "--log-level", "debug"],
            new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = notify.Path });

        string ready = await notify.ReceiveAsync(Timeout, () => $"stderr:\n{daemon.Stderr}");

        // The first notification is READY=1, and at that moment both sockets accept.
        Assert.StartsWith("READY=1\n", ready, StringComparison.Ordinal);
        Assert.Contains("STATUS=serving 1 VM(s)", ready, StringComparison.Ordinal);
        using (Socket host = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            host.Connect(new UnixDomainSocketEndPoint(uds));
        }

        using (Socket frontend = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            frontend.Connect(new UnixDomainSocketEndPoint(socket));
        }

        PosixSignals.Send(daemon.Id, PosixSignals.SIGTERM);
        string stopping = await notify.ReceiveAsync(Timeout, () => $"stderr:\n{daemon.Stderr}");
        Assert.StartsWith("STOPPING=1\n", stopping, StringComparison.Ordinal);
        int exitCode = await daemon.WaitForExitAsync(Timeout);
        Assert.True(exitCode == 0, $"exit code {exitCode}; stderr:\n{daemon.Stderr}");
        Assert.False(File.Exists(socket), "the vhost-user socket was not removed");
        Assert.False(File.Exists(uds), "the host-side socket was not removed");
    }

    [Fact(Timeout = 90_000)]
    public async Task A_socket_passed_with_listen_fds_is_served_and_left_to_systemd()
    {
        using var dir = new TempDirectory();
        string socket = dir.File("vhost.sock");
        string uds = dir.File("vm.vsock");
        using var notify = new NotifySocket(dir.File("notify"));

        // systemd-socket-activate binds the socket, and starts the daemon on the first connection (the frontend).
        using DaemonProcess daemon = await StartActivatedAsync(
            ["--socket", socket, "--uds-path", uds], notify, ["-l", socket, "--fdname=vhost-user"], [socket]);

        using var frontend = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        frontend.Connect(new UnixDomainSocketEndPoint(socket));
        string ready = await notify.ReceiveAsync(Timeout, () => $"stderr:\n{daemon.Stderr}");
        Assert.StartsWith("READY=1\n", ready, StringComparison.Ordinal);
        Assert.Contains($"vhost-user socket {socket} passed by systemd", daemon.Stderr, StringComparison.Ordinal);

        // The frontend that woke it was accepted on the passed socket.
        Assert.True(await EventuallyAsync(() => daemon.Stderr.Contains("frontend connected", StringComparison.OrdinalIgnoreCase)), $"stderr:\n{daemon.Stderr}");

        await StopActivatedAsync(daemon);
        Assert.True(File.Exists(socket), "the activated socket's file belongs to systemd and must stay");
        Assert.False(File.Exists(uds), "the host-side socket was not removed");
    }

    [Fact(Timeout = 90_000)]
    public async Task A_passed_host_side_socket_is_served_and_left_to_systemd()
    {
        using var dir = new TempDirectory();
        string socket = dir.File("vhost.sock");
        string uds = dir.File("vm.vsock");
        using var notify = new NotifySocket(dir.File("notify"));
        using DaemonProcess daemon = await StartActivatedAsync(
            ["--socket", socket, "--uds-path", uds, "--log-level", "debug"], notify, ["-l", socket, "-l", uds], [socket, uds]);

        // A host program connects first (this wakes the daemon) and asks for a guest port: its connection waits in
        // the passed socket's backlog until the daemon accepts it there. With no guest attached the daemon refuses
        // (closes without "OK"); a socket the daemon did not take would leave it waiting forever.
        using var host = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        host.Connect(new UnixDomainSocketEndPoint(uds));
        host.Send("CONNECT 1234\n"u8);
        string ready = await notify.ReceiveAsync(Timeout, () => $"stderr:\n{daemon.Stderr}");
        Assert.StartsWith("READY=1\n", ready, StringComparison.Ordinal);
        Assert.Contains($"host-side socket {uds} passed by systemd", daemon.Stderr, StringComparison.Ordinal);
        Assert.Contains($"vhost-user socket {socket} passed by systemd", daemon.Stderr, StringComparison.Ordinal);
        using (var answered = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken))
        {
            answered.CancelAfter(Timeout);
            byte[] reply = new byte[64];
            int n;
            try
            {
                n = await host.ReceiveAsync(reply, SocketFlags.None, answered.Token);
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
            {
                n = 0;
            }

            Assert.True(n == 0, $"expected the refusal (end of stream), got {System.Text.Encoding.ASCII.GetString(reply, 0, n)}; stderr:\n{daemon.Stderr}");
        }

        await StopActivatedAsync(daemon);
        Assert.True(File.Exists(socket), "the activated vhost-user socket's file belongs to systemd and must stay");
        Assert.True(File.Exists(uds), "the activated host-side socket's file belongs to systemd and must stay");
        Assert.False(File.Exists(uds + ".seqpacket"), "the daemon's own SEQPACKET socket was not removed");
    }

    [Fact]
    public void Listen_fds_for_another_process_are_ignored()
    {
        var problems = new List<string>();
        using SocketActivation activation = SocketActivation.FromEnvironment(
            name => name switch { "LISTEN_PID" => "1", "LISTEN_FDS" => "1", _ => null }, Environment.ProcessId, problems);
        Assert.Empty(activation.Paths);
        Assert.Empty(problems);
    }

    [Fact]
    public void A_passed_listening_socket_is_found_by_its_path_and_taken_once()
    {
        using var dir = new TempDirectory();
        string path = dir.File("passed.sock");
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        int fd = (int)listener.SafeHandle.DangerousGetHandle();
        listener.SafeHandle.SetHandleAsInvalid(); // the activation owns the descriptor now, as with systemd
        var problems = new List<string>();
        using SocketActivation activation = SocketActivation.FromEnvironment(
            name => name switch { "LISTEN_PID" => $"{Environment.ProcessId}", "LISTEN_FDS" => "1", "LISTEN_FDNAMES" => "vhost", _ => null },
            Environment.ProcessId, problems, firstDescriptor: fd);

        Assert.Empty(problems);
        Assert.Equal(["vhost"], activation.Names);
        Assert.True(activation.Has(path));
        var probe = new ActivatedPathsProbe(VhostUserVsock.Configuration.UnixFileSystemProbe.Instance, activation);
        Assert.Equal(VhostUserVsock.Configuration.PathKind.Missing, probe.GetKind(path));
        using Socket? taken = activation.Take(path);
        Assert.NotNull(taken);
        Assert.Null(activation.Take(path));
        using var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        client.Connect(new UnixDomainSocketEndPoint(path));
        using Socket accepted = taken.Accept();
    }

    /// <summary>
    /// Starts the daemon the way a socket unit does, under <c>systemd-socket-activate</c> with <paramref name="listen"/>
    /// (its <c>-l</c> options) and <c>NOTIFY_SOCKET</c>, and waits until every path of <paramref name="sockets"/> is bound.
    /// </summary>
    private static async Task<DaemonProcess> StartActivatedAsync(string[] arguments, NotifySocket notify, string[] listen, string[] sockets)
    {
        const string activate = "/usr/bin/systemd-socket-activate";
        Assert.True(File.Exists(activate), "systemd-socket-activate is missing: run scripts/install-test-deps.sh (Debian package systemd)");
        DaemonProcess daemon = DaemonProcess.Start(
            arguments,
            new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = notify.Path },
            [activate, .. listen, "-E", "NOTIFY_SOCKET"]);
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!sockets.All(File.Exists))
        {
            Assert.False(daemon.HasExited, $"systemd-socket-activate exited early; stderr:\n{daemon.Stderr}");
            Assert.True(waited.Elapsed < Timeout, $"no sockets after {Timeout.TotalSeconds} s; stderr:\n{daemon.Stderr}");
            await Task.Delay(20, TestContext.Current.CancellationToken); // poll interval; the loop is bounded by the Timeout deadline
        }

        return daemon;
    }

    /// <summary>SIGTERM to the daemon behind <c>systemd-socket-activate</c> (its pid is in its log); it must exit 0.</summary>
    private static async Task StopActivatedAsync(DaemonProcess daemon)
    {
        Match pid = DaemonPid().Match(daemon.Stderr);
        Assert.True(pid.Success, $"stderr:\n{daemon.Stderr}");
        PosixSignals.Send(int.Parse(pid.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), PosixSignals.SIGTERM);
        int exitCode = await daemon.WaitForExitAsync(Timeout);
        Assert.True(exitCode == 0, $"exit code {exitCode}; stderr:\n{daemon.Stderr}");
    }

    private static async Task<bool> EventuallyAsync(Func<bool> condition)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            if (waited.Elapsed > Timeout)
            {
                return false;
            }

            await Task.Delay(20, TestContext.Current.CancellationToken); // poll interval; the loop is bounded by the Timeout deadline
        }

        return true;
    }

    [GeneratedRegex(@"\(pid (\d+)\)")]
    private static partial Regex DaemonPid();
}
