using System.CommandLine;
using VhostUserVsock.Configuration;

namespace VhostUserVsock.Cli;

/// <summary>
/// The daemon's options, named as rust-vmm's vhost-device-vsock names them. Values are read as
/// text and parsed by the configuration layer, so every bad value gets the same one-line message
/// whichever form it came in.
/// </summary>
public sealed class DaemonOptions
{
    /// <summary><c>--guest-cid N</c>: one VM's guest CID.</summary>
    public Option<string> GuestCid { get; } = new("--guest-cid")
    {
        HelpName = "N",
        Description = "Context id of the guest, which identifies it for the device's lifetime:\n"
            + "3 to 4294967294 (0, 1, 2 and 4294967295 are reserved). [default: 3]",
    };

    /// <summary><c>--socket PATH</c>: one VM's vhost-user socket.</summary>
    public Option<string> Socket { get; } = new("--socket")
    {
        HelpName = "PATH",
        Description = "Unix socket the daemon listens on for the VMM's vhost-user connection\n"
            + "(QEMU: -chardev socket,id=c0,path=PATH -device vhost-user-vsock-pci,chardev=c0).",
    };

    /// <summary><c>--uds-path PATH</c>: one VM's host-side Unix socket.</summary>
    public Option<string> UdsPath { get; } = new("--uds-path")
    {
        HelpName = "PATH",
        Description = "Unix socket for host programs. To reach guest port P, connect to PATH and send\n"
            + "\"CONNECT P\\n\" (the answer is \"OK <host port>\\n\"). A guest connecting to the host\n"
            + "(CID 2) port P reaches the Unix socket PATH_P, where a host program listens.",
    };

    /// <summary><c>--tx-buffer-size BYTES</c>: one VM's per-connection tx buffer.</summary>
    public Option<string> TxBufferSize { get; } = new("--tx-buffer-size")
    {
        HelpName = "BYTES",
        Description = "Per-connection buffer for data from the guest on its way to a host socket,\n"
            + "4096 to 16777216. [default: 65536]",
    };

    /// <summary><c>--queue-size N</c>: one VM's largest vring size.</summary>
    public Option<string> QueueSize { get; } = new("--queue-size")
    {
        HelpName = "N",
        Description = "Largest virtqueue size accepted from the VMM, a power of two up to 32768.\n"
            + "[default: 1024]",
    };

    /// <summary><c>--groups A+B</c>: one VM's sibling groups.</summary>
    public Option<string> Groups { get; } = new("--groups")
    {
        HelpName = "A+B",
        Description = "Groups the VM belongs to, joined by '+'. VMs served by one daemon reach each other\n"
            + "by CID when they share a group. [default: default]",
    };

    /// <summary><c>--vm key=value,…</c>: one VM per occurrence.</summary>
    public Option<string[]> Vm { get; } = new("--vm")
    {
        HelpName = "key=value,...",
        Description = "One VM, as comma-separated key=value pairs; repeat for more VMs:\n"
            + "  guest-cid=N,socket=PATH,uds-path=PATH[,tx-buffer-size=BYTES][,queue-size=N][,groups=A+B]\n"
            + "Keys take '-' or '_' (guest_cid, uds_path, ...). socket and uds-path are required,\n"
            + "the rest default as the options above. Cannot be combined with the one-VM options.",
    };

    /// <summary><c>--config FILE</c>: VMs from a YAML file.</summary>
    public Option<string> Config { get; } = new("--config")
    {
        HelpName = "FILE",
        Description = "Read the VMs from a YAML file in rust-vmm vhost-device-vsock's format:\n"
            + "  vms:\n"
            + "    - guest_cid: 3\n"
            + "      socket: /tmp/vhost3.socket\n"
            + "      uds_path: /tmp/vm3.vsock\n"
            + "      groups: group1+groupA\n"
            + "Same keys as --vm. Cannot be combined with --vm or the one-VM options.",
    };

    /// <summary><c>--log-level LEVEL</c>.</summary>
    public Option<string> LogLevel { get; } = new("--log-level")
    {
        HelpName = "LEVEL",
        Description = "Least severe messages logged (to stderr): " + LogLevelNames.Documented + ".\n"
            + "[default: information]",
    };

    /// <summary><c>--capture PATH</c>: pcap packet capture of every VM.</summary>
    public Option<string> Capture { get; } = new("--capture")
    {
        HelpName = "PATH",
        Description = "Write every packet crossing each VM's device to a pcap file (LINKTYPE_VSOCK, read by\n"
            + "Wireshark and tshark), mode 0600. {cid} in PATH is replaced by the guest CID (required\n"
            + "with several VMs).",
    };

    /// <summary><c>--capture-snaplen BYTES</c>.</summary>
    public Option<string> CaptureSnapLength { get; } = new("--capture-snaplen")
    {
        HelpName = "BYTES",
        Description = "Payload bytes kept per captured packet, 0 to 65536. [default: 65536]",
    };

    /// <summary><c>--poll-max-us MICROSECONDS</c>: adaptive polling of the device loops.</summary>
    public Option<string> PollMaxUs { get; } = new("--poll-max-us")
    {
        HelpName = "MICROSECONDS",
        Description = "Longest time a VM's device loop polls for its next event before it sleeps, 0 to 1000;\n"
            + "it polls only while events keep coming that soon (as QEMU's poll-max-ns), trading CPU\n"
            + "time while busy for latency. 0 turns polling off. [default: 32]",
    };

    /// <summary><c>--control PATH</c>: the control socket.</summary>
    public Option<string> Control { get; } = new("--control")
    {
        HelpName = "PATH",
        Description = "Unix socket (mode 0600) answering one JSON request per line: connections of every VM\n"
            + "with state, bytes, credit and stall reason; capture-start/capture-stop. Read it with\n"
            + "`vhost-user-vsock connections --control PATH`.",
    };

    /// <summary><c>--allow RULE</c>: access rules, repeatable.</summary>
    public Option<string[]> Allow { get; } = new("--allow")
    {
        HelpName = "RULE",
        Description = "Allow only these connections, for every VM (repeat; a direction without rules allows all;\n"
            + "a VM's allow: list in the --config file adds to them for that VM):\n"
            + "  guest-to-host:PORTS                   host ports the guest may connect to\n"
            + "  host-to-guest:PORTS[,uid=N][,gid=N]   guest ports host programs (with that uid/gid) may reach\n"
            + "  sibling:CID[,CID...]                  sibling guests it may talk with (both VMs must allow)\n"
            + "PORTS is N or N-M. Refused attempts look like \"no listener\" and are logged at debug.",
    };

    /// <summary><c>--metrics-listen ADDR</c>: Prometheus text endpoint.</summary>
    public Option<string> MetricsListen { get; } = new("--metrics-listen")
    {
        HelpName = "ADDR",
        Description = "Serve the VirtioVsock meter in Prometheus text format at http://ADDR/metrics; ADDR is\n"
            + "HOST:PORT (e.g. " + Metrics.MetricsAddress.Default + ") or unix:/PATH (mode 0600). Loopback or a Unix\n"
            + "socket only, unless --metrics-allow-remote.",
    };

    /// <summary><c>--metrics-allow-remote</c>: accept a non-loopback <c>--metrics-listen</c> address.</summary>
    public Option<bool> MetricsAllowRemote { get; } = new("--metrics-allow-remote")
    {
        Description = "Allow --metrics-listen on an address other than loopback.",
    };

    /// <summary><c>--forward-cid</c>: rust-vmm's vsock forwarding backend, recognised only to be refused clearly.</summary>
    public Option<string> ForwardCid { get; } = new("--forward-cid") { Hidden = true };

    /// <summary><c>--forward-listen</c>: rust-vmm's vsock forwarding backend, recognised only to be refused clearly.</summary>
    public Option<string> ForwardListen { get; } = new("--forward-listen") { Hidden = true };

    /// <summary>The options that describe the one VM of the one-VM form, with the setting each sets.</summary>
    public IReadOnlyList<(Option<string> Option, VmSetting Setting)> SingleVm =>
    [
        (GuestCid, VmSetting.GuestCid),
        (Socket, VmSetting.Socket),
        (UdsPath, VmSetting.UdsPath),
        (TxBufferSize, VmSetting.TxBufferSize),
        (QueueSize, VmSetting.QueueSize),
        (Groups, VmSetting.Groups),
    ];

    /// <summary>Every option, in help order.</summary>
    public IReadOnlyList<Option> All =>
        [GuestCid, Socket, UdsPath, TxBufferSize, QueueSize, Groups, Vm, Config, LogLevel, Capture, CaptureSnapLength, PollMaxUs, Control, Allow, MetricsListen, MetricsAllowRemote, ForwardCid, ForwardListen];
}
