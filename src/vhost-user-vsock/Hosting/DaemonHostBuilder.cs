using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using VhostUserVsock.Cli;
using VhostUserVsock.Configuration;
using VhostUserVsock.Control;
using VhostUserVsock.Systemd;

namespace VhostUserVsock.Hosting;

/// <summary>
/// Builds the daemon's <c>Microsoft.Extensions.Hosting</c> Generic Host from a validated configuration: one
/// <see cref="VmService"/> per VM (started and stopped concurrently), the control socket and the metrics endpoint
/// when asked for, <see cref="DaemonLifetime"/> as the lifetime (readiness, signals), console logging (journald's
/// format under systemd, through <c>AddSystemd</c>), and configuration from <c>VHOST_USER_VSOCK_</c> environment
/// variables (e.g. <c>VHOST_USER_VSOCK_Logging__LogLevel__Vhost.User=Debug</c>). Builds only; never starts anything.
/// </summary>
public static class DaemonHostBuilder
{
    /// <summary>The prefix of the environment variables the host's configuration reads.</summary>
    public const string EnvironmentPrefix = "VHOST_USER_VSOCK_";

    /// <summary>Builds the host.</summary>
    /// <param name="config">The validated configuration.</param>
    /// <param name="server">Serves the VMs.</param>
    /// <param name="probe">How socket paths are examined (hides the sockets systemd passed).</param>
    /// <param name="notifier">The service manager's notification socket, or <see langword="null"/>.</param>
    /// <param name="metrics">Where to serve the metrics (Prometheus text), or <see langword="null"/>.</param>
    /// <param name="app">The app's settings (logging, signals, shutdown timeout).</param>
    /// <returns>The host, not started.</returns>
    public static IHost Build(DaemonConfig config, IVmServer server, IFileSystemProbe probe, SystemdNotifier? notifier, Metrics.MetricsAddress? metrics, DaemonApp app)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(probe);
        ArgumentNullException.ThrowIfNull(app);
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings
        {
            ApplicationName = DaemonApp.ProgramName,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Configuration.AddEnvironmentVariables(EnvironmentPrefix);
        app.ConfigureLogging(builder.Logging, config.LogLevel);
        builder.Logging.AddConfiguration(builder.Configuration.GetSection("Logging"));

        IServiceCollection services = builder.Services;
        services.Configure<HostOptions>(options =>
        {
            options.ShutdownTimeout = app.ShutdownTimeout;
            options.ServicesStartConcurrently = true;
            options.ServicesStopConcurrently = true;
        });

        // Under systemd: journald's log format (and systemd's lifetime, replaced below by the daemon's own).
        services.AddSystemd();
        services.AddSingleton(config);
        services.AddSingleton(server);
        services.AddSingleton(probe);
        services.AddSingleton<DaemonRun>();
        services.AddSingleton<IHostLifetime>(provider => new DaemonLifetime(
            provider.GetRequiredService<IHostApplicationLifetime>(),
            provider.GetRequiredService<DaemonRun>(),
            notifier,
            app.HandleSignals,
            provider.GetRequiredService<ILogger<DaemonLifetime>>()));
        foreach (VmConfig vm in config.Vms)
        {
            services.AddSingleton<IHostedService>(provider => new VmService(
                vm,
                server,
                provider.GetRequiredService<ILoggerFactory>(),
                probe,
                provider.GetRequiredService<DaemonRun>(),
                app.ShutdownTimeout));
        }

        if (config.Operations.ControlPath is { } controlPath && server is VsockVmServer vmServer)
        {
            services.AddSingleton<IHostedService>(provider => new ControlService(
                controlPath, vmServer.Registry, provider.GetRequiredService<ILogger<ControlServer>>()));
        }

        if (metrics is not null)
        {
            services.AddSingleton<IHostedService>(provider => new Metrics.MetricsService(
                metrics, provider.GetRequiredService<ILogger<Metrics.MetricsEndpoint>>()));
        }

        return builder.Build();
    }
}
