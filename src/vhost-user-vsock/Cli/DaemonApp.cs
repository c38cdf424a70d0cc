using System.CommandLine;
using System.Reflection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using VhostUserVsock.Configuration;
using VhostUserVsock.Control;
using VhostUserVsock.Hosting;
using VhostUserVsock.Systemd;

namespace VhostUserVsock.Cli;

/// <summary>
/// The whole daemon process: parses the command line, validates the configuration (each problem
/// a single line on stderr and <see cref="ExitCodes.Usage"/>, no stack trace), sets up logging
/// and signal handling, and runs the VMs on the <see cref="IVmServer"/> the factory returns on a
/// <c>Microsoft.Extensions.Hosting</c> Generic Host (<see cref="DaemonHostBuilder"/>: each VM a hosted service).
/// </summary>
public sealed partial class DaemonApp
{
    /// <summary>The program name that starts error lines.</summary>
    public const string ProgramName = "vhost-user-vsock";

    private readonly Func<DaemonConfig, SocketActivation, IVmServer> _serverFactory;

    /// <summary>Creates the app.</summary>
    /// <param name="serverFactory">Creates the server for a validated configuration (called once, after validation).</param>
    public DaemonApp(Func<DaemonConfig, IVmServer> serverFactory)
    {
        ArgumentNullException.ThrowIfNull(serverFactory);
        _serverFactory = (config, _) => serverFactory(config);
    }

    /// <summary>Creates the app with a server that can use sockets passed by systemd.</summary>
    /// <param name="serverFactory">Creates the server for a validated configuration and the passed sockets.</param>
    public DaemonApp(Func<DaemonConfig, SocketActivation, IVmServer> serverFactory)
    {
        ArgumentNullException.ThrowIfNull(serverFactory);
        _serverFactory = serverFactory;
    }

    /// <summary>Whether the daemon speaks systemd's protocols: readiness notification to <c>NOTIFY_SOCKET</c>
    /// (<c>READY=1</c>, <c>STOPPING=1</c>) and socket activation (<c>LISTEN_FDS</c>). The real process: yes.</summary>
    public bool UseSystemd { get; init; }

    /// <summary>Reads an environment variable (default: the process environment).</summary>
    public Func<string, string?> GetEnvironmentVariable { get; init; } = Environment.GetEnvironmentVariable;

    /// <summary>Where help and the version go (default: stdout).</summary>
    public TextWriter Output { get; init; } = Console.Out;

    /// <summary>Where error lines go (default: stderr).</summary>
    public TextWriter Error { get; init; } = Console.Error;

    /// <summary>Where sockets go when no VM is given (default: from <c>XDG_RUNTIME_DIR</c>).</summary>
    public DefaultPaths Defaults { get; init; } = DefaultPaths.FromEnvironment();

    /// <summary>How socket paths are examined.</summary>
    public IFileSystemProbe Probe { get; init; } = UnixFileSystemProbe.Instance;

    /// <summary>Whether SIGINT and SIGTERM stop the daemon gracefully (the real process: yes; in-process tests: no).</summary>
    public bool HandleSignals { get; init; }

    /// <summary>Configures the host's logging for a level (default: <see cref="ConsoleLogging.Configure"/>).</summary>
    public Action<ILoggingBuilder, LogLevel> ConfigureLogging { get; init; } = ConsoleLogging.Configure;

    /// <summary>How long VMs get to stop once asked.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Runs the daemon with these arguments until it is stopped.</summary>
    /// <param name="args">The arguments, without the program name.</param>
    /// <param name="stop">Stops the daemon as SIGTERM would.</param>
    /// <returns>The exit code (<see cref="ExitCodes"/>).</returns>
    public async Task<int> RunAsync(IReadOnlyList<string> args, CancellationToken stop = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        try
        {
            var commandLine = new DaemonCommandLine(Defaults);
            commandLine.Command.SetAction((parseResult, _) => ServeAsync(commandLine, parseResult, stop));
            commandLine.Connections.Command.SetAction((parseResult, token) => commandLine.Connections.RunAsync(parseResult, Output, Error, token));
            ParseResult parseResult = commandLine.Parse(args);
            if (parseResult.Errors.Count > 0)
            {
                WriteError($"{parseResult.Errors[0].Message} (see --help)");
                return ExitCodes.Usage;
            }

            var invocation = new InvocationConfiguration
            {
                Output = Output,
                Error = Error,
                EnableDefaultExceptionHandler = false,
                ProcessTerminationTimeout = null,
            };
            return await parseResult.InvokeAsync(invocation, stop).ConfigureAwait(false);
        }
        catch (ConfigurationException ex)
        {
            WriteError(ex.Message);
            return ExitCodes.Usage;
        }
        catch (Exception ex)
        {
            WriteError($"unexpected error: {ex.GetType().Name}: {ex.Message}");
            return ExitCodes.Failure;
        }
    }

    /// <summary>The version shown by <c>--version</c> and logged at start.</summary>
    /// <returns>The informational version of this assembly.</returns>
    public static string Version() =>
        typeof(DaemonApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(DaemonApp).Assembly.GetName().Version?.ToString()
        ?? "unknown";

    private async Task<int> ServeAsync(DaemonCommandLine commandLine, ParseResult parseResult, CancellationToken stop)
    {
        // Sockets passed by systemd are taken first: validation must not probe them (a probe would be a connection).
        var activationProblems = new List<string>();
        using SocketActivation activation = UseSystemd
            ? SocketActivation.FromEnvironment(GetEnvironmentVariable, Environment.ProcessId, activationProblems)
            : SocketActivation.None;
        IFileSystemProbe probe = activation.Paths.Count > 0 ? new ActivatedPathsProbe(Probe, activation) : Probe;
        DaemonConfig config;
        Metrics.MetricsAddress? metrics;
        try
        {
            config = commandLine.ToConfig(parseResult);
            metrics = commandLine.MetricsOf(parseResult);
            if (config.Source == ConfigSource.Defaults)
            {
                commandLine.Defaults.EnsureDirectoryExists();
            }

            ConfigValidator.Validate(config, probe);
        }
        catch (ConfigurationException ex)
        {
            WriteError(ex.Message);
            return ExitCodes.Usage;
        }

        IVmServer server = _serverFactory(config, activation);
        using SystemdNotifier? notifier = UseSystemd ? SystemdNotifier.Create(GetEnvironmentVariable("NOTIFY_SOCKET")) : null;
        int exitCode;
        using (IHost host = DaemonHostBuilder.Build(config, server, probe, notifier, metrics, this))
        {
            var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
            var run = host.Services.GetRequiredService<DaemonRun>();
            ILogger logger = host.Services.GetRequiredService<ILogger<DaemonApp>>();
            foreach (string problem in activationProblems)
            {
                LogActivationProblem(logger, problem);
            }

            LogStarting(logger, Version(), Environment.ProcessId, config.Vms.Length, config.Source);
            using CancellationTokenRegistration stopRegistration = stop.Register(lifetime.StopApplication);
            try
            {
                await host.StartAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested)
            {
                // Asked to stop while starting (SIGTERM before every VM listened): a clean stop.
            }
            catch (Exception ex)
            {
                LogStartFailed(logger, ex);
                run.Fail();
            }

            await host.WaitForShutdownAsync(CancellationToken.None).ConfigureAwait(false);
            bool allStopped = host.Services.GetServices<IHostedService>().OfType<VmService>().All(vm => vm.Stopped);
            if (allStopped)
            {
                await DisposeServerAsync(server, run, logger).ConfigureAwait(false);
            }

            exitCode = run.ExitCode;
            LogStopped(logger, exitCode);
        }

        return exitCode;
    }

    private static async Task DisposeServerAsync(IVmServer server, DaemonRun run, ILogger logger)
    {
        try
        {
            switch (server)
            {
                case IAsyncDisposable asyncDisposable:
                    await asyncDisposable.DisposeAsync().ConfigureAwait(false);
                    break;
                case IDisposable disposable:
                    disposable.Dispose();
                    break;
            }
        }
        catch (Exception ex)
        {
            LogDisposeFailed(logger, ex);
            run.Fail();
        }
    }

    private void WriteError(string message)
    {
        Error.WriteLine($"{ProgramName}: error: {ConfigText.OneLine(message)}");
        Error.Flush();
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "vhost-user-vsock {Version} (pid {ProcessId}) serving {Count} VM(s) from {Source}")]
    private static partial void LogStarting(ILogger logger, string version, int processId, int count, ConfigSource source);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "{Problem}")]
    private static partial void LogActivationProblem(ILogger logger, string problem);

    [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "Starting failed; stopping the daemon")]
    private static partial void LogStartFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 13, Level = LogLevel.Information, Message = "Stopped (exit code {ExitCode})")]
    private static partial void LogStopped(ILogger logger, int exitCode);

    [LoggerMessage(EventId = 16, Level = LogLevel.Error, Message = "Disposing the VM server failed")]
    private static partial void LogDisposeFailed(ILogger logger, Exception exception);
}
