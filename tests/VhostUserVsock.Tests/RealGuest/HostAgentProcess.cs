using System.Diagnostics;
using VhostUserVsock.Tests.Guest;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// The NativeAOT guest agent (tests/guest/vsock-agent) run on the host, e.g. <c>host-serve PATH</c>: a
/// Kestrel on the Unix socket where guest connections to a host port arrive. Owns the process (killed
/// on dispose) and its output lines; every wait is bounded.
/// </summary>
public sealed class HostAgentProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly SemaphoreSlim _changed = new(0);

    private HostAgentProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => Add(e.Data);
        _process.ErrorDataReceived += (_, e) => Add(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>Where build-dotnet-guest.sh puts the agent: <c>.work/guest/dotnet/vsock-agent</c>.</summary>
    public static string? Locate() =>
        GuestImage.FindRepositoryRoot() is { } root && File.Exists(Path.Combine(root, ".work", "guest", "dotnet", "vsock-agent"))
            ? Path.Combine(root, ".work", "guest", "dotnet", "vsock-agent")
            : null;

    /// <summary>Every output line so far.</summary>
    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
                return [.. _lines];
        }
    }

    /// <summary>Starts the agent with <paramref name="arguments"/>.</summary>
    public static HostAgentProcess Start(params string[] arguments)
    {
        string agent = Locate() ?? throw new InvalidOperationException(
            "no .work/guest/dotnet/vsock-agent: run scripts/install-test-deps.sh (tests/guest/build-dotnet-guest.sh .work/guest)");
        var info = new ProcessStartInfo(agent) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments)
            info.ArgumentList.Add(a);
        return new HostAgentProcess(Process.Start(info) ?? throw new InvalidOperationException("cannot start " + agent));
    }

    /// <summary>Waits for a line starting with <paramref name="prefix"/>; throws with the output at the timeout or if the process ends.</summary>
    public async Task<string> WaitForLineAsync(string prefix, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        while (true)
        {
            var found = Lines.FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
            if (found is not null)
                return found;
            if (_process.HasExited)
                throw new InvalidOperationException($"the host agent exited ({_process.ExitCode}) before printing '{prefix}': {string.Join(" | ", Lines)}");
            try
            {
                await _changed.WaitAsync(TimeSpan.FromMilliseconds(500), cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"the host agent printed no '{prefix}' within {timeout.TotalSeconds:0} s: {string.Join(" | ", Lines)}");
            }
        }
    }

    /// <summary>Kills the process and waits for it (bounded).</summary>
    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }

    private void Add(string? line)
    {
        if (line is null)
            return;
        lock (_lines)
            _lines.Add(line);
        _changed.Release();
    }
}
