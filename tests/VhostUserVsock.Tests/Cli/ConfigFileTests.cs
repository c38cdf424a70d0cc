using System.Collections.Immutable;
using VhostUserVsock.Configuration;

namespace VhostUserVsock.Tests.Cli;

public sealed class ConfigFileTests
{
    private static string ParseError(string yaml)
    {
        var error = Assert.Throws<ConfigurationException>(() => ConfigFile.Parse(yaml, "vms.yaml"));
        Assert.DoesNotContain('\n', error.Message);
        return error.Message;
    }

    [Fact]
    public void Rust_vmm_readme_example()
    {
        const string Yaml = """
            vms:
                - guest_cid: 3
                  socket: /tmp/vhost3.socket
                  uds_path: /tmp/vm3.vsock
                  tx_buffer_size: 65536
                  queue_size: 1024
                  groups: group1+groupA
                - guest_cid: 4
                  socket: /tmp/vhost4.socket
                  uds_path: /tmp/vm4.vsock
                  tx_buffer_size: 32768
                  queue_size: 256
                  groups: group2+groupB
            """;

        ImmutableArray<VmConfig> vms = ConfigFile.Parse(Yaml, "vms.yaml");

        Assert.Equal(2, vms.Length);
        Assert.Equal(new VmConfig { GuestCid = 3, SocketPath = "/tmp/vhost3.socket", UdsPath = "/tmp/vm3.vsock", TxBufferSize = 65536, QueueSize = 1024, Groups = ["group1", "groupA"] }, vms[0]);
        Assert.Equal(new VmConfig { GuestCid = 4, SocketPath = "/tmp/vhost4.socket", UdsPath = "/tmp/vm4.vsock", TxBufferSize = 32768, QueueSize = 256, Groups = ["group2", "groupB"] }, vms[1]);
    }

    [Fact]
    public void Defaults_dashes_comments_quotes_document_markers_and_crlf()
    {
        string yaml = string.Join("\r\n", [
            "# daemon configuration",
            "---",
            "vms:",
            "- socket: '/tmp/it''s.sock'   # single-quoted",
            "  uds-path: \"/tmp/with # hash.sock\"",
            "",
            "-",
            "  guest-cid: 0x10",
            "  socket: /tmp/b.sock",
            "  uds_path: /tmp/b#1.sock",
            "...",
        ]);

        ImmutableArray<VmConfig> vms = ConfigFile.Parse(yaml, "vms.yaml");

        Assert.Equal(new VmConfig { SocketPath = "/tmp/it's.sock", UdsPath = "/tmp/with # hash.sock" }, vms[0]);
        Assert.Equal(new VmConfig { GuestCid = 16, SocketPath = "/tmp/b.sock", UdsPath = "/tmp/b#1.sock" }, vms[1]);
    }

    [Fact]
    public void Any_yaml_syntax_flow_collections_anchors_aliases_block_scalars_and_tags()
    {
        const string Yaml = """
            vms:
              - {guest_cid: 3, socket: "/run/v3.socket", uds_path: '/run/v3.vsock', groups: red}
              - guest_cid: !!int 4
                socket: >-
                  /run/v4.socket
                uds_path: |-
                  /run/v4.vsock
                groups: *red_group
              - guest-cid: 5
                socket: /run/v5.socket
                uds-path: /run/v5.vsock
                groups: &red_group red
            """;

        // An alias must follow its anchor: *red_group comes before &red_group here.
        Assert.Equal(
            "config file 'vms.yaml' line 8: alias '*red_group' names no anchor defined before it",
            ParseError(Yaml));

        ImmutableArray<VmConfig> vms = ConfigFile.Parse(Yaml.Replace("*red_group", "red+blue", StringComparison.Ordinal), "vms.yaml");

        Assert.Equal(new VmConfig { GuestCid = 3, SocketPath = "/run/v3.socket", UdsPath = "/run/v3.vsock", Groups = ["red"] }, vms[0]);
        Assert.Equal(new VmConfig { GuestCid = 4, SocketPath = "/run/v4.socket", UdsPath = "/run/v4.vsock", Groups = ["red", "blue"] }, vms[1]);
        Assert.Equal(new VmConfig { GuestCid = 5, SocketPath = "/run/v5.socket", UdsPath = "/run/v5.vsock", Groups = ["red"] }, vms[2]);

        ImmutableArray<VmConfig> aliased = ConfigFile.Parse("vms:\n  - socket: &s /a\n    uds_path: /b\n    groups: &g x\n  - socket: /c\n    uds_path: /d\n    groups: *g\n", "vms.yaml");
        Assert.Equal(["x"], aliased[1].Groups);
    }

    [Fact]
    public void Per_vm_allow_lists_one_rule_or_several()
    {
        const string Yaml = """
            vms:
              - guest_cid: 3
                socket: /tmp/v3.socket
                uds_path: /tmp/v3.vsock
                allow:
                  - host-to-guest:22,uid=1000
                  - guest-to-host:1024-2047
                  - sibling:4,5
              - guest_cid: 4
                socket: /tmp/v4.socket
                uds_path: /tmp/v4.vsock
                allow: sibling:3
              - guest_cid: 5
                socket: /tmp/v5.socket
                uds_path: /tmp/v5.vsock
            """;

        ImmutableArray<VmConfig> vms = ConfigFile.Parse(Yaml, "vms.yaml");

        AccessRules three = vms[0].Access;
        Assert.Equal([new Virtio.Vsock.Backends.Unix.Access.HostToGuestRule(new(22, 22), 1000)], three.HostToGuest);
        Assert.Equal([new Virtio.Vsock.Backends.Unix.Access.PortRange(1024, 2047)], three.GuestToHost);
        Assert.Equal([4UL, 5UL], three.Siblings);
        Assert.Equal(new AccessRules { Siblings = [3] }, vms[1].Access);
        Assert.Same(AccessRules.None, vms[2].Access);
        Assert.NotEqual(vms[1], vms[1] with { Access = AccessRules.None });
    }

    [Fact]
    public void Load_reports_missing_and_unreadable_files()
    {
        using var dir = new TempDirectory();

        Assert.Equal(
            $"--config: cannot read '{dir.File("none.yaml")}': no such file",
            Assert.Throws<ConfigurationException>(() => ConfigFile.Load(dir.File("none.yaml"))).Message);
        Assert.Equal(
            $"--config: cannot read '{dir.Path}': it is a directory",
            Assert.Throws<ConfigurationException>(() => ConfigFile.Load(dir.Path)).Message);
    }

    [Theory]
    [InlineData("", "config file 'vms.yaml': no 'vms:' list of VMs")]
    [InlineData("# nothing\n", "config file 'vms.yaml': no 'vms:' list of VMs")]
    [InlineData("vms:\n", "config file 'vms.yaml' line 1: no VMs listed under vms:")]
    [InlineData("vms: []\n", "config file 'vms.yaml' line 1: no VMs listed under vms:")]
    [InlineData("vms: /a\n", "config file 'vms.yaml' line 1: vms must be a list of VMs, one '- ' entry per VM; found a value")]
    [InlineData("- vms\n", "config file 'vms.yaml' line 1: the file is a list; it holds one key, vms: a list of VMs")]
    [InlineData("machines:\n  - socket: /a\n", "config file 'vms.yaml' line 1: unknown top-level key 'machines' (the file holds one key, vms: a list of VMs)")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\nextra: 1\n", "config file 'vms.yaml' line 4: unknown top-level key 'extra' (the file holds one key, vms: a list of VMs)")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\nvms:\n  - socket: /c\n", "config file 'vms.yaml' line 4: vms is given twice")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\n    cid: 3\n", "config file 'vms.yaml' line 4: unknown key 'cid' (known keys: guest-cid, socket, uds-path, tx-buffer-size, queue-size, groups, allow; '_' may replace '-')")]
    [InlineData("vms:\n  - socket: /a\n    forward_cid: 1\n", "config file 'vms.yaml' line 3: 'forward_cid' selects rust-vmm's vsock forwarding backend, which vhost-user-vsock does not have; use uds-path")]
    [InlineData("vms:\n  - guest_cid: 3\n    socket: /a\n", "config file 'vms.yaml' line 2 (VM 1): missing uds_path (each VM needs socket and uds_path)")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\n  - uds_path: /c\n", "config file 'vms.yaml' line 4 (VM 2): missing socket (each VM needs socket and uds_path)")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\n    socket: /c\n", "config file 'vms.yaml' line 4: socket is given twice")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\n    queue_size: 100\n", "config file 'vms.yaml' line 4: queue_size: queue size 100 is not a power of two from 1 to 32768")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\n    guest_cid: three\n", "config file 'vms.yaml' line 4: guest_cid 'three' is not a number")]
    [InlineData("vms:\n  - socket: /a\n    uds_path:\n", "config file 'vms.yaml' line 3: uds_path has no value")]
    [InlineData("vms:\n  - socket: /a\n\tuds_path: /b\n", "config file 'vms.yaml' line 3: a tab in the indentation (YAML indents with spaces)")]
    [InlineData("vms:\n  - socket /a\n", "config file 'vms.yaml' line 2: expected 'key: value', found 'socket /a'")]
    [InlineData("vms:\n  - socket: [/a]\n", "config file 'vms.yaml' line 2: socket takes one value, found a list")]
    [InlineData("vms:\n  - socket: {path: /a}\n", "config file 'vms.yaml' line 2: socket takes one value, found a mapping")]
    [InlineData("vms:\n  - sockets: [/a]\n", "config file 'vms.yaml' line 2: unknown key 'sockets' (known keys: guest-cid, socket, uds-path, tx-buffer-size, queue-size, groups, allow; '_' may replace '-')")]
    [InlineData("vms:\n  - socket: *s\n", "config file 'vms.yaml' line 2: alias '*s' names no anchor defined before it")]
    [InlineData("vms:\n  - socket: /a\n      uds_path: /b\n", "config file 'vms.yaml' line 3 column 15: not valid YAML: While scanning a plain scalar value, found invalid mapping")]
    [InlineData("vms:\n  - socket: /a\n   uds_path: /b\n", "config file 'vms.yaml' line 3 column 4: not valid YAML: While parsing a block collection, did not find expected '-' indicator")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\n   - socket: /c\n", "config file 'vms.yaml' line 4 column 4: not valid YAML: While parsing a block collection, did not find expected '-' indicator")]
    [InlineData("vms:\n  - socket: \"/a\n", "config file 'vms.yaml' line 2 column 13: not valid YAML: While scanning a quoted scalar, found unexpected end of stream")]
    [InlineData("vms:\n  - socket: \"/a\\q\"\n", "config file 'vms.yaml' line 2 column 13: not valid YAML: While scanning a quoted scalar, found unknown escape character")]
    [InlineData("vms:\n  - socket: '/a' b\n", "config file 'vms.yaml' line 2 column 18: not valid YAML: While parsing a block mapping, did not find expected key")]
    [InlineData("vms:\n  -\n  - socket: /a\n", "config file 'vms.yaml' line 2 (VM 1): empty VM entry")]
    [InlineData("vms:\n  - - socket: /a\n", "config file 'vms.yaml' line 2 (VM 1): a VM is a mapping of 'key: value' settings, found a list")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\n    allow: guest-to-host:80\n    allow: sibling:4\n", "config file 'vms.yaml' line 5: allow is given twice")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\n    allow:\n      - guest-to-host:80\n      - sideways:1\n", "config file 'vms.yaml' line 6: allow: 'sideways:1': the direction is guest-to-host, host-to-guest or sibling")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\n    allow: host-to-guest:22,uid=root\n", "config file 'vms.yaml' line 4: allow: 'host-to-guest:22,uid=root': 'root' is not a numeric id")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\n    allow: sibling:1\n", "config file 'vms.yaml' line 4: allow: 'sibling:1': guest CID 1 is reserved for local loopback; a guest CID is 3 to 4294967294")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\n    allow: []\n", "config file 'vms.yaml' line 4: allow needs one rule or a list of rules (guest-to-host:PORTS, host-to-guest:PORTS[,uid=N][,gid=N], sibling:CID[,CID...])")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\n    allow:\n      - {ports: 80}\n", "config file 'vms.yaml' line 5: allow: each rule is one value like host-to-guest:22, found a mapping")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\n---\nvms:\n", "config file 'vms.yaml' line 4: only one YAML document is read")]
    public void Bad_files_give_one_line_messages_with_the_line(string yaml, string expected) =>
        Assert.Equal(expected, ParseError(yaml));
}
