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
    [InlineData("vms: []\n", "config file 'vms.yaml' line 1: vms must be a block list of VMs, one '- ' entry per VM")]
    [InlineData("machines:\n  - socket: /a\n", "config file 'vms.yaml' line 1: unknown top-level key 'machines' (the file holds one key, vms: a list of VMs)")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\nextra: 1\n", "config file 'vms.yaml' line 4: unknown top-level key 'extra' (the file holds one key, vms: a list of VMs)")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\nvms:\n  - socket: /c\n", "config file 'vms.yaml' line 4: vms is given twice")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\n    cid: 3\n", "config file 'vms.yaml' line 4: unknown key 'cid' (known keys: guest-cid, socket, uds-path, tx-buffer-size, queue-size, groups; '_' may replace '-')")]
    [InlineData("vms:\n  - socket: /a\n    forward_cid: 1\n", "config file 'vms.yaml' line 3: 'forward_cid' selects rust-vmm's vsock forwarding backend, which vhost-user-vsock does not have; use uds-path")]
    [InlineData("vms:\n  - guest_cid: 3\n    socket: /a\n", "config file 'vms.yaml' line 2 (VM 1): missing uds_path (each VM needs socket and uds_path)")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\n  - uds_path: /c\n", "config file 'vms.yaml' line 4 (VM 2): missing socket (each VM needs socket and uds_path)")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\n    socket: /c\n", "config file 'vms.yaml' line 4: socket is given twice")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\n    queue_size: 100\n", "config file 'vms.yaml' line 4: queue_size: queue size 100 is not a power of two from 1 to 32768")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\n    guest_cid: three\n", "config file 'vms.yaml' line 4: guest_cid 'three' is not a number")]
    [InlineData("vms:\n  - socket: /a\n    uds_path:\n", "config file 'vms.yaml' line 3: uds_path has no value")]
    [InlineData("vms:\n  - socket: /a\n\tuds_path: /b\n", "config file 'vms.yaml' line 3: a tab in the indentation (YAML indents with spaces)")]
    [InlineData("vms:\n  - {socket: /a, uds_path: /b}\n", "config file 'vms.yaml' line 2: '{socket: /a, uds_path: /b}' is a flow collection, which this reader does not support; write one 'key: value' per line")]
    [InlineData("vms:\n  - socket /a\n", "config file 'vms.yaml' line 2: expected 'key: value', found 'socket /a'")]
    [InlineData("vms:\n  - socket: [/a]\n", "config file 'vms.yaml' line 2: '[/a]' uses YAML this reader does not support (flow collections, anchors, tags, block scalars); write a plain or quoted value")]
    [InlineData("vms:\n  - socket: &s /a\n", "config file 'vms.yaml' line 2: '&s /a' uses YAML this reader does not support (flow collections, anchors, tags, block scalars); write a plain or quoted value")]
    [InlineData("vms:\n  - socket: |\n      /a\n", "config file 'vms.yaml' line 2: '|' uses YAML this reader does not support (flow collections, anchors, tags, block scalars); write a plain or quoted value")]
    [InlineData("vms:\n  - socket: /a\n      uds_path: /b\n", "config file 'vms.yaml' line 3: nested values and multi-line scalars are not supported; each VM setting is 'key: value' on one line")]
    [InlineData("vms:\n  - socket: /a\n   uds_path: /b\n", "config file 'vms.yaml' line 3: unexpected indentation; the settings of a VM line up under its first one")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\n   - socket: /c\n", "config file 'vms.yaml' line 4: unexpected indentation; the settings of a VM line up under its first one")]
    [InlineData("vms:\n  - socket: \"/a\n", "config file 'vms.yaml' line 2: unterminated double-quoted value")]
    [InlineData("vms:\n  - socket: \"/a\\q\"\n", "config file 'vms.yaml' line 2: unsupported escape '\\q' in a double-quoted value")]
    [InlineData("vms:\n  - socket: '/a' b\n", "config file 'vms.yaml' line 2: unexpected text after the closing quote in ''/a' b'")]
    [InlineData("vms:\n  -\n  - socket: /a\n", "config file 'vms.yaml' line 2 (VM 1): empty VM entry")]
    [InlineData("vms:\n  - - socket: /a\n", "config file 'vms.yaml' line 2: nested lists are not supported; a VM is a mapping of 'key: value' lines")]
    [InlineData("vms:\n  - socket: /a\n    uds_path: /b\n---\nvms:\n", "config file 'vms.yaml' line 4: only one YAML document is read")]
    public void Bad_files_give_one_line_messages_with_the_line(string yaml, string expected) =>
        Assert.Equal(expected, ParseError(yaml));
}
