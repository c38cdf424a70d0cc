using Virtio.Vsock.Backends.Unix.Access;
using VhostUserVsock.Cli;
using VhostUserVsock.Configuration;

namespace VhostUserVsock.Tests.Cli;

/// <summary>
/// Access rules from both places: a VM's <c>allow</c> list in the config file (that VM) and <c>--allow</c> on the
/// command line (every VM). Per direction the two add up; a direction with no rule from either stays open.
/// Sibling rules allow a pair only when both VMs' rules allow it.
/// </summary>
public sealed class AccessRulesConfigTests
{
    private static readonly DefaultPaths Defaults = DefaultPaths.FromRuntimeDirectory("/run/user/1000");

    private const string ThreeVms = """
        vms:
          - guest_cid: 3
            socket: /tmp/v3.socket
            uds_path: /tmp/v3.vsock
            allow:
              - host-to-guest:22,uid=1000
              - sibling:4
          - guest_cid: 4
            socket: /tmp/v4.socket
            uds_path: /tmp/v4.vsock
            allow: guest-to-host:9000
          - guest_cid: 5
            socket: /tmp/v5.socket
            uds_path: /tmp/v5.vsock
        """;

    private static DaemonConfig Load(string yaml, params string[] extra)
    {
        using var dir = new TempDirectory();
        string file = dir.File("vms.yaml");
        File.WriteAllText(file, yaml);
        return new DaemonCommandLine(Defaults).ParseConfig(["--config", file, .. extra]);
    }

    [Fact]
    public void Per_vm_rules_apply_to_their_vm_only()
    {
        DaemonConfig config = Load(ThreeVms);
        VsockAccessRules three = config.AccessOf(config.Vms[0]).ForHostSide()!;
        VsockAccessRules four = config.AccessOf(config.Vms[1]).ForHostSide()!;

        Assert.True(three.AllowsHostConnect(22, new(1, 1000, 1000)));
        Assert.False(three.AllowsHostConnect(22, new(1, 1001, 1000)));
        Assert.False(three.AllowsHostConnect(80, new(1, 1000, 1000)));
        Assert.True(three.AllowsGuestConnect(1));
        Assert.True(four.AllowsGuestConnect(9000));
        Assert.False(four.AllowsGuestConnect(9001));
        Assert.True(four.AllowsHostConnect(80, null));
        Assert.Null(config.AccessOf(config.Vms[2]).ForHostSide());
    }

    [Fact]
    public void Command_line_rules_apply_to_every_vm_and_add_to_its_own()
    {
        DaemonConfig config = Load(ThreeVms, "--allow", "host-to-guest:80", "--allow", "guest-to-host:7000-7010");
        VsockAccessRules three = config.AccessOf(config.Vms[0]).ForHostSide()!;
        VsockAccessRules four = config.AccessOf(config.Vms[1]).ForHostSide()!;
        VsockAccessRules five = config.AccessOf(config.Vms[2]).ForHostSide()!;

        // VM 3: its own uid rule for 22, plus port 80 for anyone.
        Assert.True(three.AllowsHostConnect(22, new(1, 1000, 1000)));
        Assert.False(three.AllowsHostConnect(22, new(1, 0, 0)));
        Assert.True(three.AllowsHostConnect(80, null));
        Assert.False(three.AllowsHostConnect(81, new(1, 1000, 1000)));
        Assert.True(three.AllowsGuestConnect(7005));
        Assert.False(three.AllowsGuestConnect(9000));

        // VM 4: its own guest-to-host 9000 and the command line's 7000-7010.
        Assert.True(four.AllowsGuestConnect(9000));
        Assert.True(four.AllowsGuestConnect(7000));
        Assert.False(four.AllowsGuestConnect(8000));
        Assert.False(four.AllowsHostConnect(22, null));

        // VM 5: the command line's rules only.
        Assert.True(five.AllowsHostConnect(80, null));
        Assert.False(five.AllowsHostConnect(22, new(1, 1000, 1000)));
        Assert.True(five.AllowsGuestConnect(7010));
        Assert.False(five.AllowsGuestConnect(7011));
    }

    [Fact]
    public void Sibling_rules_need_both_ends()
    {
        DaemonConfig config = Load(ThreeVms);

        Assert.Equal([4UL], config.SiblingsOf(config.Vms[0]).Select(vm => vm.GuestCid));
        Assert.Equal([3UL, 5UL], config.SiblingsOf(config.Vms[1]).Select(vm => vm.GuestCid));
        Assert.Equal([4UL], config.SiblingsOf(config.Vms[2]).Select(vm => vm.GuestCid));
        var map = config.SiblingAccess();
        Assert.True(map.Allows(3, 4));
        Assert.False(map.Allows(5, 3));
        Assert.True(map.Allows(4, 5));
        Assert.Equal(new HashSet<ulong> { 4 }, map.PeersOf(3));
        Assert.Null(map.PeersOf(5));

        // --allow sibling:3,5 applies to every VM and adds to VM 3's own rule: VM 3 may talk with 3, 4 and 5, VMs 4
        // and 5 with 3 and 5. So 3-4 and 3-5 pass; 4-5 does not (VM 5's rules now exist and leave 4 out).
        DaemonConfig widened = Load(ThreeVms, "--allow", "sibling:3,5");
        Assert.Equal([4UL, 5UL], widened.SiblingsOf(widened.Vms[0]).Select(vm => vm.GuestCid));
        Assert.Equal([3UL], widened.SiblingsOf(widened.Vms[1]).Select(vm => vm.GuestCid));
        Assert.Equal([3UL], widened.SiblingsOf(widened.Vms[2]).Select(vm => vm.GuestCid));
        Assert.False(widened.SiblingAccess().Allows(4, 5));
    }

    [Fact]
    public void Without_rules_the_maps_allow_everything()
    {
        DaemonConfig config = Load("vms:\n  - guest_cid: 3\n    socket: /tmp/a\n    uds_path: /tmp/b\n  - guest_cid: 4\n    socket: /tmp/c\n    uds_path: /tmp/d\n");

        Assert.Same(Virtio.Vsock.Device.Siblings.SiblingAccessRules.AllowAll, config.SiblingAccess());
        Assert.Null(config.AccessOf(config.Vms[0]).ForHostSide());
        Assert.Equal([4UL], config.SiblingsOf(config.Vms[0]).Select(vm => vm.GuestCid));
    }
}
