using VhostUserVsock.Cli;
using VhostUserVsock.Configuration;

// vhost-user-vsock: parse the command line, validate, then serve every VM until SIGINT/SIGTERM.
// Usage and configuration errors: one line on stderr, exit code 2. See `vhost-user-vsock --help`.
var app = new DaemonApp(CreateVmServer) { HandleSignals = true };
return await app.RunAsync(args).ConfigureAwait(false);

static IVmServer CreateVmServer(DaemonConfig config)
{
    // WIRING: return the real vhost-user server here: one IVmServer for the whole daemon (it gets
    // every VM's RunAsync call, so it can hold the CID map for sibling communication between VMs
    // that share a group; see DaemonConfig.SiblingsOf). The placeholder only claims the sockets.
    _ = config;
    return new PlaceholderVmServer();
}
