using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using VhostUserVsock.Configuration;

namespace VhostUserVsock.Cli;

/// <summary><c>--help</c>: System.CommandLine's help, followed by <see cref="Epilog"/>.</summary>
public sealed class HelpWithExamplesAction : SynchronousCommandLineAction
{
    private readonly HelpAction _help;
    private readonly DefaultPaths _defaults;

    /// <summary>Wraps the standard help action.</summary>
    /// <param name="help">The standard help action.</param>
    /// <param name="defaults">The default socket locations, shown in the text.</param>
    public HelpWithExamplesAction(HelpAction help, DefaultPaths defaults)
    {
        ArgumentNullException.ThrowIfNull(help);
        ArgumentNullException.ThrowIfNull(defaults);
        _help = help;
        _defaults = defaults;
    }

    /// <inheritdoc/>
    public override bool ClearsParseErrors => true;

    /// <summary>The text after the option list: the forms, the defaults, an example QEMU command, checks, signals, exit codes.</summary>
    /// <param name="defaults">The default socket locations.</param>
    /// <returns>The text, lines separated by '\n'.</returns>
    public static string Epilog(DefaultPaths defaults)
    {
        ArgumentNullException.ThrowIfNull(defaults);
        return $"""
            Forms (as rust-vmm's vhost-device-vsock; they do not mix):
              One VM:
                vhost-user-vsock --guest-cid 4 --socket /tmp/vhost4.socket --uds-path /tmp/vm4.vsock
              One --vm per VM (keys with '-' or '_'):
                vhost-user-vsock \
                  --vm guest-cid=3,socket=/tmp/vhost3.socket,uds-path=/tmp/vm3.vsock,groups=group1+groupA \
                  --vm guest_cid=4,socket=/tmp/vhost4.socket,uds_path=/tmp/vm4.vsock,tx_buffer_size=32768,queue_size=256
              A YAML file:
                vhost-user-vsock --config vms.yaml
              No VM arguments: one VM, guest CID {VmDefaults.GuestCid}, with
                socket   {defaults.SocketPath(VmDefaults.GuestCid)}
                uds-path {defaults.UdsPath(VmDefaults.GuestCid)}
                (under $XDG_RUNTIME_DIR/{DefaultPaths.DirectoryName}, or {DefaultPaths.FallbackRuntimeDirectory}/{DefaultPaths.DirectoryName} when XDG_RUNTIME_DIR is unset;
                the directory is created, mode 0700)

            QEMU (guest memory must be shareable, e.g. memfd):
              qemu-system-x86_64 ... -object memory-backend-memfd,id=mem0,size=512M \
                -machine q35,memory-backend=mem0 \
                -chardev socket,id=char0,path=/tmp/vhost4.socket -device vhost-user-vsock-pci,chardev=char0

            Host side (uds-path /tmp/vm4.vsock):
              to a guest listening on port 1234:  nc -U /tmp/vm4.vsock, then send "CONNECT 1234"
              from a guest connecting to 2:1234:  nc -l -U /tmp/vm4.vsock_1234

            Checked at start, each a one-line error and exit code 2: reserved or duplicate guest CIDs,
            duplicate paths, socket paths whose directory is missing or not writable, paths that exist and
            are not sockets or are in use, unknown or repeated keys, malformed numbers, queue sizes that
            are not a power of two up to 32768, tx buffer sizes outside 4 KiB..16 MiB.
            SIGINT/SIGTERM: the VMs stop, their socket files are removed, exit code 0.
            Exit codes: 0 stopped cleanly (or help/version), 1 a VM failed, 2 bad command line or configuration.
            Not supported: rust-vmm's vsock forwarding backend (--forward-cid, --forward-listen).
            """.Replace("\r\n", "\n", StringComparison.Ordinal);
    }

    /// <inheritdoc/>
    public override int Invoke(ParseResult parseResult)
    {
        ArgumentNullException.ThrowIfNull(parseResult);
        int exitCode = _help.Invoke(parseResult);
        parseResult.InvocationConfiguration.Output.Write(Epilog(_defaults));
        parseResult.InvocationConfiguration.Output.WriteLine();
        parseResult.InvocationConfiguration.Output.WriteLine();
        return exitCode;
    }
}
