using VhostUserVsock.Cli;
using VhostUserVsock.Configuration;
using VhostUserVsock.Hosting;
using VhostUserVsock.Systemd;

// vhost-user-vsock: parse the command line, validate, then serve every VM until SIGINT/SIGTERM.
// Usage and configuration errors: one line on stderr, exit code 2. See `vhost-user-vsock --help`.
var app = new DaemonApp(CreateVmServer) { HandleSignals = true, UseSystemd = true };
return await app.RunAsync(args).ConfigureAwait(false);

static IVmServer CreateVmServer(DaemonConfig config, SocketActivation activation)
{
    // One server for the whole daemon; RunAsync is called once per VM, concurrently. The server
    // builds the CID map from the configuration: guests of VMs with a group in common
    // (DaemonConfig.SiblingsOf) reach each other by CID.
    // Sockets passed by systemd (socket activation) are used instead of binding new ones.
    return new VsockVmServer(config) { Activation = activation };
}
