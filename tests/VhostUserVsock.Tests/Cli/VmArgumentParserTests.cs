using VhostUserVsock.Configuration;

namespace VhostUserVsock.Tests.Cli;

public sealed class VmArgumentParserTests
{
    [Fact]
    public void Dashed_keys_with_every_setting()
    {
        VmConfig vm = VmArgumentParser.Parse(
            "guest-cid=4,socket=/tmp/vhost4.socket,uds-path=/tmp/vm4.vsock,tx-buffer-size=32768,queue-size=256,groups=group1+groupA",
            "--vm");

        Assert.Equal(4ul, vm.GuestCid);
        Assert.Equal("/tmp/vhost4.socket", vm.SocketPath);
        Assert.Equal("/tmp/vm4.vsock", vm.UdsPath);
        Assert.Equal(32768u, vm.TxBufferSize);
        Assert.Equal(256u, vm.QueueSize);
        Assert.Equal(new[] { "group1", "groupA" }, vm.Groups);
    }

    [Fact]
    public void Underscored_keys_in_any_order_as_in_rust_vmm_tests()
    {
        VmConfig vm = VmArgumentParser.Parse(
            "groups=group2+group3,guest_cid=5,socket=/tmp/vhost5.socket,uds_path=/tmp/vm5.vsock,tx_buffer_size=32768,queue_size=256",
            "--vm");

        Assert.Equal(
            new VmConfig
            {
                GuestCid = 5,
                SocketPath = "/tmp/vhost5.socket",
                UdsPath = "/tmp/vm5.vsock",
                TxBufferSize = 32768,
                QueueSize = 256,
                Groups = ["group2", "group3"],
            },
            vm);
    }

    [Fact]
    public void Omitted_settings_take_the_defaults()
    {
        VmConfig vm = VmArgumentParser.Parse("socket=/tmp/vhost3.socket,uds_path=/tmp/vm3.vsock", "--vm");

        // rust-vmm's defaults, except the tx buffer: Linux's own buf_alloc (256 KiB) instead of 64 KiB.
        Assert.Equal(3ul, vm.GuestCid);
        Assert.Equal(256u * 1024, vm.TxBufferSize);
        Assert.Equal(1024u, vm.QueueSize);
        Assert.Equal(new[] { "default" }, vm.Groups);
        Assert.Equal(VmConfig.DefaultGroups, vm.Groups);
    }

    [Fact]
    public void Values_may_contain_equals_signs_and_surrounding_space_is_trimmed()
    {
        VmConfig vm = VmArgumentParser.Parse(" socket=/tmp/a=b.sock , uds-path= /tmp/c.sock ,guest-cid=0x10", "--vm");

        Assert.Equal("/tmp/a=b.sock", vm.SocketPath);
        Assert.Equal("/tmp/c.sock", vm.UdsPath);
        Assert.Equal(16ul, vm.GuestCid);
    }

    [Fact]
    public void Relative_paths_become_absolute()
    {
        VmConfig vm = VmArgumentParser.Parse("socket=rel.sock,uds-path=./x/vm.sock", "--vm");

        Assert.Equal(Path.Join(Environment.CurrentDirectory, "rel.sock"), vm.SocketPath);
        Assert.Equal(Path.Join(Environment.CurrentDirectory, "x", "vm.sock"), vm.UdsPath);
    }

    [Fact]
    public void Groups_are_a_set()
    {
        VmConfig vm = VmArgumentParser.Parse("socket=/a,uds-path=/b,groups=b+a+b", "--vm");

        Assert.Equal(new[] { "a", "b" }, vm.Groups);
        Assert.True(vm.SharesGroupWith(VmArgumentParser.Parse("socket=/c,uds-path=/d,groups=x+b", "--vm")));
        Assert.False(vm.SharesGroupWith(VmArgumentParser.Parse("socket=/c,uds-path=/d", "--vm")));
    }

    [Theory]
    [InlineData("", "--vm #1: empty; expected key=value pairs like guest-cid=3,socket=PATH,uds-path=PATH")]
    [InlineData("socket=/a,,uds-path=/b", "--vm #1: empty key=value pair (a stray ',' in 'socket=/a,,uds-path=/b')")]
    [InlineData("socket=/a,uds-path=/b,", "--vm #1: empty key=value pair (a stray ',' in 'socket=/a,uds-path=/b,')")]
    [InlineData("socket=/a,uds-path", "--vm #1: 'uds-path' is not a key=value pair")]
    [InlineData("=3,socket=/a,uds-path=/b", "--vm #1: '=3' has no key before '='")]
    [InlineData("socket=/a,uds-path=/b,cid=3", "--vm #1: unknown key 'cid' (known keys: guest-cid, socket, uds-path, tx-buffer-size, queue-size, groups; '_' may replace '-')")]
    [InlineData("socket=/a,uds-path=/b,Guest-Cid=3", "--vm #1: unknown key 'Guest-Cid' (known keys: guest-cid, socket, uds-path, tx-buffer-size, queue-size, groups; '_' may replace '-')")]
    [InlineData("uds-path=/b", "--vm #1: missing socket=PATH (each --vm needs socket and uds-path)")]
    [InlineData("socket=/a", "--vm #1: missing uds-path=PATH (each --vm needs socket and uds-path)")]
    [InlineData("socket=/a,uds-path=/b,socket=/c", "--vm #1: socket is given twice")]
    [InlineData("socket=/a,uds-path=/b,guest-cid=3,guest_cid=4", "--vm #1: guest_cid is given twice")]
    [InlineData("socket=,uds-path=/b", "--vm #1: socket is empty")]
    [InlineData("socket=/a,uds-path=/b,guest-cid=four", "--vm #1: guest-cid 'four' is not a number")]
    [InlineData("socket=/a,uds-path=/b,guest-cid=-3", "--vm #1: guest-cid '-3' is not a number")]
    [InlineData("socket=/a,uds-path=/b,guest-cid=3.0", "--vm #1: guest-cid '3.0' is not a number")]
    [InlineData("socket=/a,uds-path=/b,guest-cid=", "--vm #1: guest-cid '' is not a number")]
    [InlineData("socket=/a,uds-path=/b,guest-cid=99999999999999999999", "--vm #1: guest-cid '99999999999999999999' is too large")]
    [InlineData("socket=/a,uds-path=/b,guest-cid=2", "--vm #1: guest-cid: guest CID 2 is the host's CID; a guest CID is 3 to 4294967294")]
    [InlineData("socket=/a,uds-path=/b,tx-buffer-size=64k", "--vm #1: tx-buffer-size '64k' is not a number")]
    [InlineData("socket=/a,uds-path=/b,tx-buffer-size=0", "--vm #1: tx-buffer-size: tx buffer size 0 is out of range; it is 4096 to 16777216 bytes (4 KiB to 16 MiB)")]
    [InlineData("socket=/a,uds-path=/b,queue_size=1000", "--vm #1: queue_size: queue size 1000 is not a power of two from 1 to 32768")]
    [InlineData("socket=/a,uds-path=/b,groups=a++b", "--vm #1: groups 'a++b': empty group name (groups are names joined by '+', e.g. groups=a+b)")]
    [InlineData("socket=/a,forward-cid=1", "--vm #1: 'forward-cid' selects rust-vmm's vsock forwarding backend, which vhost-user-vsock does not have; use uds-path")]
    [InlineData("socket=/a,uds-path=/b,forward_listen=9000", "--vm #1: 'forward_listen' selects rust-vmm's vsock forwarding backend, which vhost-user-vsock does not have; use uds-path")]
    public void Bad_arguments_give_one_line_messages(string argument, string expected)
    {
        var error = Assert.Throws<ConfigurationException>(() => VmArgumentParser.Parse(argument, "--vm #1"));

        Assert.Equal(expected, error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void Control_characters_in_input_are_escaped_in_messages()
    {
        var error = Assert.Throws<ConfigurationException>(() => VmArgumentParser.Parse("socket=/a,uds-path=/b,bad\nkey=1", "--vm"));

        Assert.Equal("--vm: unknown key 'bad\\nkey' (known keys: guest-cid, socket, uds-path, tx-buffer-size, queue-size, groups; '_' may replace '-')", error.Message);
    }

    [Fact]
    public void ToVmArgument_round_trips()
    {
        VmConfig vm = VmArgumentParser.Parse("guest-cid=7,socket=/s,uds-path=/u,tx-buffer-size=4096,queue-size=128,groups=x+y", "--vm");

        Assert.Equal("guest-cid=7,socket=/s,uds-path=/u,tx-buffer-size=4096,queue-size=128,groups=x+y", vm.ToVmArgument());
        Assert.Equal(vm, VmArgumentParser.Parse(vm.ToVmArgument(), "--vm"));
        Assert.Equal("/u_1234", vm.HostPortSocketPath(1234));
    }
}
