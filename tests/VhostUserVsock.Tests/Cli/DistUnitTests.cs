using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text.RegularExpressions;

namespace VhostUserVsock.Tests.Cli;

/// <summary>
/// The systemd units in dist/: systemd-analyze accepts them, and the daemon started as they describe it (the
/// socket unit's ListenStream passed by systemd-socket-activate, the service's ExecStart with the shipped
/// vms.yaml, paths moved from /run into a temp directory) reports READY=1, serves, and stops cleanly on SIGTERM.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed partial class DistUnitTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static string Dist
    {
        get
        {
            for (string? dir = AppContext.BaseDirectory; dir is not null; dir = Path.GetDirectoryName(dir))
            {
                if (File.Exists(Path.Join(dir, "dist", "vhost-user-vsock.service")))
                {
                    return Path.Join(dir, "dist");
                }
            }

            Assert.Fail("dist/vhost-user-vsock.service not found above the test directory");
            return string.Empty;
        }
    }

    private static string Unit(string name) => File.ReadAllText(Path.Join(Dist, name));

    private static string Setting(string unit, string key) =>
        Assert.Single(unit.Split('\n'), line => line.StartsWith(key + "=", StringComparison.Ordinal))[(key.Length + 1)..].Trim();

    [Fact]
    public void The_service_is_type_notify_and_its_config_serves_the_socket_units_path()
    {
        string service = Unit("vhost-user-vsock.service");
        string socket = Unit("vhost-user-vsock.socket");
        Assert.Equal("notify", Setting(service, "Type"));
        Assert.Equal("SIGTERM", Setting(service, "KillSignal"));
        string listen = Setting(socket, "ListenStream");
        Assert.Contains($"socket: {listen}", File.ReadAllText(Path.Join(Dist, "vms.yaml")), StringComparison.Ordinal);
        Assert.Equal("/usr/bin/vhost-user-vsock --config /etc/vhost-user-vsock/vms.yaml", Setting(service, "ExecStart"));
    }

    [Fact(Timeout = 60_000)]
    public async Task Systemd_analyze_verifies_the_units()
    {
        const string analyze = "/usr/bin/systemd-analyze";
        Assert.True(File.Exists(analyze), "systemd-analyze is missing: run scripts/install-test-deps.sh (Debian package systemd)");
        using var dir = new TempDirectory();

        // ExecStart must name an executable that exists here: the daemon's apphost next to the tests, or /bin/true.
        string service = Unit("vhost-user-vsock.service").Replace("/usr/bin/vhost-user-vsock", "/bin/true", StringComparison.Ordinal);
        File.WriteAllText(dir.File("vhost-user-vsock.service"), service);
        File.WriteAllText(dir.File("vhost-user-vsock.socket"), Unit("vhost-user-vsock.socket"));
        var start = new ProcessStartInfo(analyze) { RedirectStandardError = true, RedirectStandardOutput = true, WorkingDirectory = dir.Path };
        foreach (string arg in (string[])["verify", "--man=no", dir.File("vhost-user-vsock.service"), dir.File("vhost-user-vsock.socket")])
        {
            start.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(start)!;
        string output = await process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken)
            + await process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.True(process.ExitCode == 0, $"systemd-analyze verify exited {process.ExitCode}: {output}");
        Assert.DoesNotContain("vhost-user-vsock.s", output, StringComparison.Ordinal);
    }

    [Fact(Timeout = 90_000)]
    public async Task The_daemon_runs_as_the_units_describe_it()
    {
        const string activate = "/usr/bin/systemd-socket-activate";
        Assert.True(File.Exists(activate), "systemd-socket-activate is missing: run scripts/install-test-deps.sh (Debian package systemd)");
        using var dir = new TempDirectory();
        string Moved(string text) => text.Replace("/run/vhost-user-vsock", dir.Path, StringComparison.Ordinal);
        string listen = Moved(Setting(Unit("vhost-user-vsock.socket"), "ListenStream"));
        string config = dir.File("vms.yaml");
        File.WriteAllText(config, Moved(File.ReadAllText(Path.Join(Dist, "vms.yaml"))));
        string[] exec = Setting(Unit("vhost-user-vsock.service"), "ExecStart").Split(' ')[1..];
        exec = [.. exec.Select(arg => arg == "/etc/vhost-user-vsock/vms.yaml" ? config : arg)];
        string uds = Assert.Single(UdsPath().Matches(File.ReadAllText(config))).Groups[1].Value.Trim();

        using var notify = new NotifySocket(dir.File("notify"));
        using DaemonProcess daemon = DaemonProcess.Start(
            exec,
            new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = notify.Path },
            [activate, "-l", listen, "-E", "NOTIFY_SOCKET"]);
        var waited = Stopwatch.StartNew();
        while (!File.Exists(listen))
        {
            Assert.False(daemon.HasExited, $"exited early; stderr:\n{daemon.Stderr}");
            Assert.True(waited.Elapsed < Timeout, $"no socket; stderr:\n{daemon.Stderr}");
            await Task.Delay(20, TestContext.Current.CancellationToken); // poll interval; the loop is bounded by the Timeout deadline above
        }

        using (var frontend = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            frontend.Connect(new UnixDomainSocketEndPoint(listen));
            Assert.StartsWith("READY=1\n", await notify.ReceiveAsync(Timeout, () => daemon.Stderr), StringComparison.Ordinal);
        }

        using (var host = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            host.Connect(new UnixDomainSocketEndPoint(uds));
        }

        Match pid = DaemonPid().Match(daemon.Stderr);
        Assert.True(pid.Success, daemon.Stderr);
        PosixSignals.Send(int.Parse(pid.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), PosixSignals.SIGTERM);
        Assert.StartsWith("STOPPING=1\n", await notify.ReceiveAsync(Timeout, () => daemon.Stderr), StringComparison.Ordinal);
        int exitCode = await daemon.WaitForExitAsync(Timeout);
        Assert.True(exitCode == 0, $"exit code {exitCode}; stderr:\n{daemon.Stderr}");
        Assert.True(File.Exists(listen), "the socket unit's file must stay");
        Assert.False(File.Exists(uds), "the daemon's own socket must go");
    }

    [GeneratedRegex(@"uds_path:(.*)")]
    private static partial Regex UdsPath();

    [GeneratedRegex(@"\(pid (\d+)\)")]
    private static partial Regex DaemonPid();
}
