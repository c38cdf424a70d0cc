using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using VhostUserVsock.Tests.Guest;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>What a scenario's host side works with: the daemon, the guest, its listeners, a log and checks.</summary>
public sealed class ScenarioContext : IDisposable
{
    private readonly StringBuilder _log = new();
    private readonly ConcurrentDictionary<string, double> _metrics = new(StringComparer.Ordinal);
    private readonly List<IDisposable> _owned = [];
    private readonly ConcurrentDictionary<uint, HostPortListener> _listeners = new();
    private readonly Stopwatch _clock = new();
    private QemuGuest? _guest;

    internal ScenarioContext(GuestScenario scenario, DaemonProcess daemon)
    {
        Scenario = scenario;
        Daemon = daemon;
    }

    /// <summary>The scenario.</summary>
    public GuestScenario Scenario { get; }

    /// <summary>The daemon the guest runs against.</summary>
    public DaemonProcess Daemon { get; }

    /// <summary>The hybrid-vsock socket path.</summary>
    public string UdsPath => Daemon.UdsPath;

    /// <summary>The guest (available to <see cref="GuestScenario.Host"/>, not to <see cref="GuestScenario.Prepare"/>).</summary>
    public QemuGuest Guest => _guest ?? throw new InvalidOperationException("the guest is not started yet");

    /// <summary>Cancelled when the scenario's time is up.</summary>
    public CancellationToken Cancellation { get; private set; }

    /// <summary>The host-side log so far.</summary>
    public string LogText
    {
        get
        {
            lock (_log)
                return _log.ToString();
        }
    }

    /// <summary>The numbers recorded with <see cref="Metric"/>.</summary>
    public IReadOnlyDictionary<string, double> Metrics => new Dictionary<string, double>(_metrics, StringComparer.Ordinal);

    /// <summary>Time since the host side started.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>Adds a line to the scenario log (prefixed with the time since GUEST-READY).</summary>
    public void Log(string line)
    {
        lock (_log)
            _log.Append(CultureInfo.InvariantCulture, $"[{_clock.Elapsed.TotalSeconds,7:0.000}] {line}\n");
    }

    /// <summary>Records a number (reported by the test).</summary>
    public void Metric(string key, double value)
    {
        _metrics[key] = value;
        Log(string.Create(CultureInfo.InvariantCulture, $"metric {key} = {value:0.##}"));
    }

    /// <summary>Listens on <c>uds-path_PORT</c> for guest connections; closed when the scenario ends.</summary>
    public HostPortListener Listen(uint port, SocketType type = SocketType.Stream)
    {
        var listener = new HostPortListener(UdsPath, port, type);
        lock (_owned)
            _owned.Add(listener);
        _listeners[port] = listener;
        return listener;
    }

    /// <summary>The listener <see cref="Listen"/> opened for <paramref name="port"/>.</summary>
    public HostPortListener Listener(uint port) =>
        _listeners.TryGetValue(port, out var l) ? l : throw new InvalidOperationException($"no host listener for port {port}");

    /// <summary>Keeps <paramref name="resource"/> until the scenario ends.</summary>
    public T Own<T>(T resource)
        where T : IDisposable
    {
        lock (_owned)
            _owned.Add(resource);
        return resource;
    }

    /// <summary>Waits for <c>OUT &lt;command&gt; LISTENING</c> (a guest server is ready).</summary>
    public async Task WaitListeningAsync(string command)
    {
        var line = await Guest.WaitForOutputAsync(command, "LISTENING", Timeout.InfiniteTimeSpan, Cancellation).ConfigureAwait(false);
        Log($"guest: {line}");
    }

    /// <summary>Waits for the RESULT of guest command <paramref name="command"/>.</summary>
    public async Task<GuestResult> ResultAsync(string command)
    {
        var result = await Guest.WaitForResultAsync(command, Timeout.InfiniteTimeSpan, Cancellation).ConfigureAwait(false);
        Log($"guest: {result}");
        return result;
    }

    /// <summary>Waits for the RESULT of <paramref name="command"/> and requires exit code 0.</summary>
    public async Task<GuestResult> ExpectOkAsync(string command)
    {
        var result = await ResultAsync(command).ConfigureAwait(false);
        Check(result.Succeeded, $"guest command '{command}' failed: {result}");
        return result;
    }

    /// <summary>Throws <see cref="ScenarioFailedException"/> with <paramref name="message"/> unless <paramref name="condition"/>.</summary>
    public void Check(bool condition, string message)
    {
        if (!condition)
        {
            Log("CHECK FAILED: " + message);
            throw new ScenarioFailedException(message);
        }
    }

    /// <summary>Closes the scenario's listeners and owned resources.</summary>
    public void Dispose()
    {
        List<IDisposable> owned;
        lock (_owned)
        {
            owned = [.. _owned];
            _owned.Clear();
        }
        foreach (var o in owned)
            o.Dispose();
    }

    internal void Begin(QemuGuest guest, CancellationToken cancellation)
    {
        _guest = guest;
        Cancellation = cancellation;
        _clock.Start();
    }
}
