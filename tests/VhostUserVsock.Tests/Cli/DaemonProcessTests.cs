using System.Diagnostics;

namespace VhostUserVsock.Tests.Cli;

public sealed class DaemonProcessTests
{
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(30);

    [Fact(Timeout = 60_000)]
    public async Task Bad_arguments_exit_2_with_a_single_stderr_line()
    {
        using DaemonProcess daemon = DaemonProcess.Start(["--vm", "guest-cid=2,socket=/tmp/vuvcli-a.sock,uds-path=/tmp/vuvcli-b.sock"]);

        int exitCode = await daemon.WaitForExitAsync(ExitTimeout);

        Assert.Equal(2, exitCode);
        Assert.Equal(
            "vhost-user-vsock: error: --vm: guest-cid: guest CID 2 is the host's CID; a guest CID is 3 to 4294967294\n",
            daemon.Stderr);
        Assert.Empty(daemon.Stdout);
    }

    [Fact(Timeout = 90_000)]
    public async Task No_arguments_serve_under_xdg_runtime_dir_and_sigterm_exits_0_removing_the_sockets()
    {
        using var runtime = new TempDirectory();
        string directory = Path.Join(runtime.Path, "vhost-user-vsock");
        string socket = Path.Join(directory, "vhost-user-vsock-3.sock");
        string uds = Path.Join(directory, "vsock-3.sock");
        using DaemonProcess daemon = DaemonProcess.Start([], new Dictionary<string, string?> { ["XDG_RUNTIME_DIR"] = runtime.Path });

        var waited = Stopwatch.StartNew();
        while (!(File.Exists(socket) && File.Exists(uds)))
        {
            Assert.False(daemon.HasExited, $"the daemon exited early; stderr:\n{daemon.Stderr}");
            Assert.True(waited.Elapsed < ExitTimeout, $"no sockets after {ExitTimeout.TotalSeconds} s; stderr:\n{daemon.Stderr}");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        PosixSignals.Send(daemon.Id, PosixSignals.SIGTERM);
        int exitCode = await daemon.WaitForExitAsync(ExitTimeout);

        Assert.True(exitCode == 0, $"exit code {exitCode}; stderr:\n{daemon.Stderr}");
        Assert.False(File.Exists(socket), "the vhost-user socket was not removed");
        Assert.False(File.Exists(uds), "the host-side socket was not removed");
        Assert.Contains($"vhost-user socket {socket}", daemon.Stderr, StringComparison.Ordinal);
        Assert.Contains("SIGTERM received", daemon.Stderr, StringComparison.Ordinal);
    }

    [Fact(Timeout = 90_000)]
    public async Task Log_levels_per_category_come_from_the_hosts_environment_configuration()
    {
        using var dir = new TempDirectory();
        string socket = dir.File("vhost.sock");
        string uds = dir.File("vm.vsock");
        using var notify = new NotifySocket(dir.File("notify"));
        using DaemonProcess daemon = DaemonProcess.Start(
            ["--socket", socket, "--uds-path", uds, "--log-level", "information"],
            new Dictionary<string, string?>
            {
                ["NOTIFY_SOCKET"] = notify.Path,
                ["VHOST_USER_VSOCK_Logging__LogLevel__Vhost.User"] = "Warning",
            });

        Assert.StartsWith("READY=1\n", await notify.ReceiveAsync(ExitTimeout, () => daemon.Stderr), StringComparison.Ordinal);
        PosixSignals.Send(daemon.Id, PosixSignals.SIGTERM);
        int exitCode = await daemon.WaitForExitAsync(ExitTimeout);

        Assert.True(exitCode == 0, $"exit code {exitCode}; stderr:\n{daemon.Stderr}");
        Assert.Contains("VhostUserVsock.Hosting.VmService", daemon.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Vhost.User.VhostUserServer", daemon.Stderr, StringComparison.Ordinal);
    }
}
