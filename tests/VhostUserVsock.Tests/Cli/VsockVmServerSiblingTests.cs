using Microsoft.Extensions.Logging.Abstractions;
using VhostUserVsock.Cli;
using VhostUserVsock.Configuration;
using VhostUserVsock.Hosting;

namespace VhostUserVsock.Tests.Cli;

public sealed class VsockVmServerSiblingTests
{
    [Fact(Timeout = 60_000)]
    public async Task Groups_on_the_command_line_decide_which_guests_reach_each_other()
    {
        using var directory = new TempDirectory();
        string Vm(int cid, string? groups) =>
            $"guest-cid={cid},socket={directory.File($"v{cid}.sock")},uds-path={directory.File($"u{cid}.sock")}" + (groups is null ? "" : $",groups={groups}");
        DaemonConfig config = new DaemonCommandLine(DefaultPaths.FromRuntimeDirectory(directory.Path)).ParseConfig(
        [
            "--vm", Vm(3, "a+b"),
            "--vm", Vm(4, "b"),
            "--vm", Vm(5, "c"),
            "--vm", Vm(6, null),
            "--vm", Vm(7, null),
        ]);
        var server = new VsockVmServer(config);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        Task[] running = [.. config.Vms.Select(vm => server.RunAsync(vm, NullLoggerFactory.Instance, stop.Token))];
        try
        {
            await WaitUntilAllRegisteredAsync(server, config, running);
            Assert.NotNull(server.Siblings);

            foreach (VmConfig from in config.Vms)
            {
                foreach (VmConfig to in config.Vms.Where(vm => vm != from))
                {
                    Assert.Equal(config.SiblingsOf(from).Contains(to), server.Siblings.CanReach(from.GuestCid, to.GuestCid));
                }
            }

            Assert.True(server.Siblings.CanReach(3, 4));
            Assert.True(server.Siblings.CanReach(4, 3));
            Assert.False(server.Siblings.CanReach(3, 5));
            Assert.True(server.Siblings.CanReach(6, 7));
            Assert.False(server.Siblings.CanReach(6, 3));
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(running);
        }

        Assert.Empty(server.Siblings.Cids);
    }

    [Fact(Timeout = 60_000)]
    public async Task Sibling_rules_in_the_config_file_narrow_the_groups_in_the_servers_cid_map()
    {
        using var directory = new TempDirectory();
        string Vm(int cid, string? allow) =>
            $"  - guest_cid: {cid}\n    socket: {directory.File($"v{cid}.sock")}\n    uds_path: {directory.File($"u{cid}.sock")}\n"
            + (allow is null ? "" : $"    allow: {allow}\n");
        string file = directory.File("vms.yaml");
        File.WriteAllText(file, "vms:\n" + Vm(3, "sibling:4") + Vm(4, "[guest-to-host:80, 'sibling:3,5']") + Vm(5, null));
        DaemonConfig config = new DaemonCommandLine(DefaultPaths.FromRuntimeDirectory(directory.Path)).ParseConfig(["--config", file]);
        var server = new VsockVmServer(config);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        Task[] running = [.. config.Vms.Select(vm => server.RunAsync(vm, NullLoggerFactory.Instance, stop.Token))];
        try
        {
            await WaitUntilAllRegisteredAsync(server, config, running);
            Assert.NotNull(server.Siblings);

            foreach (VmConfig from in config.Vms)
            {
                foreach (VmConfig to in config.Vms.Where(vm => vm != from))
                {
                    Assert.True(server.Siblings.CanReach(from.GuestCid, to.GuestCid), "one group: every route exists");
                    Assert.Equal(config.SiblingsOf(from).Contains(to), server.Siblings.MayConnect(from.GuestCid, to.GuestCid));
                }
            }

            Assert.True(server.Siblings.MayConnect(3, 4));
            Assert.True(server.Siblings.MayConnect(5, 4));
            Assert.False(server.Siblings.MayConnect(3, 5));
            Assert.False(server.Siblings.MayConnect(5, 3));
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(running);
        }
    }

    /// <summary>Waits (at most 30 s) until every VM of <paramref name="config"/> joined the server's CID map.</summary>
    private static async Task WaitUntilAllRegisteredAsync(VsockVmServer server, DaemonConfig config, Task[] running)
    {
        var registrationDeadline = DateTime.UtcNow.AddSeconds(30);
        while (server.Siblings!.Cids.Count < config.Vms.Length)
        {
            Assert.DoesNotContain(running, task => task.IsFaulted);
            Assert.True(DateTime.UtcNow < registrationDeadline, $"only {server.Siblings.Cids.Count} of {config.Vms.Length} VMs registered in 30 s");
            await Task.Delay(20, TestContext.Current.CancellationToken); // a poll interval, bounded by the registration deadline (registrationDeadline)
        }
    }
}
