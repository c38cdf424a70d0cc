using System.Diagnostics;
using System.Globalization;

namespace VsockLoad;

/// <summary>
/// The backend under test: either spawned by the tool from a command line with <c>{socket}</c> and
/// <c>{uds}</c> placeholders (sockets in a fresh temporary folder; killed on dispose), or already
/// running (paths given; the pid, if given, is used for CPU time only). Reads the process's CPU time
/// (user + system, all threads) from <c>/proc/PID/stat</c>.
/// </summary>
internal sealed class BackendProcess : IDisposable
{
    private const double ClockTicksPerSecond = 100; // USER_HZ on Linux x86-64 and arm64

    private readonly Process? _process;
    private readonly string? _directory;

    private BackendProcess(string socketPath, string udsPath, int pid, Process? process, string? directory)
    {
        SocketPath = socketPath;
        UdsPath = udsPath;
        Pid = pid;
        _process = process;
        _directory = directory;
    }

    /// <summary>The vhost-user socket.</summary>
    public string SocketPath { get; }

    /// <summary>The hybrid vsock socket.</summary>
    public string UdsPath { get; }

    /// <summary>The backend's pid, or 0 when unknown.</summary>
    public int Pid { get; }

    /// <summary>Seconds per clock tick.</summary>
    public static double SecondsPerTick => 1 / ClockTicksPerSecond;

    /// <summary>Spawns <paramref name="command"/> (whitespace-separated; <c>{socket}</c> and <c>{uds}</c> replaced).</summary>
    /// <param name="command">The command line.</param>
    /// <returns>The backend.</returns>
    public static BackendProcess Spawn(string command)
    {
        string directory = Directory.CreateTempSubdirectory("vsockload-").FullName;
        string socketPath = Path.Join(directory, "vhost-user.sock");
        string udsPath = Path.Join(directory, "vsock.sock");
        string[] words = command.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (words.Length == 0 || !command.Contains("{socket}", StringComparison.Ordinal) || !command.Contains("{uds}", StringComparison.Ordinal))
        {
            throw new ArgumentException("--backend needs a command with {socket} and {uds} placeholders.");
        }

        var start = new ProcessStartInfo(words[0]) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string word in words.AsSpan(1))
        {
            start.ArgumentList.Add(word.Replace("{socket}", socketPath, StringComparison.Ordinal).Replace("{uds}", udsPath, StringComparison.Ordinal));
        }

        var process = Process.Start(start) ?? throw new IOException($"could not start {words[0]}");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new BackendProcess(socketPath, udsPath, process.Id, process, directory);
    }

    /// <summary>Uses a backend that is already listening.</summary>
    /// <param name="socketPath">Its vhost-user socket.</param>
    /// <param name="udsPath">Its hybrid vsock socket.</param>
    /// <param name="pid">Its pid, or 0.</param>
    /// <returns>The backend.</returns>
    public static BackendProcess Attach(string socketPath, string udsPath, int pid) => new(socketPath, udsPath, pid, null, null);

    /// <summary>The process's CPU time (user + system, and system alone) in clock ticks, or -1s when unknown.</summary>
    /// <returns>The ticks.</returns>
    public (long Total, long Kernel) CpuTicks()
    {
        if (Pid <= 0)
        {
            return (-1, -1);
        }

        try
        {
            string stat = File.ReadAllText($"/proc/{Pid}/stat");
            string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            long kernel = long.Parse(fields[12], CultureInfo.InvariantCulture);
            return (long.Parse(fields[11], CultureInfo.InvariantCulture) + kernel, kernel);
        }
        catch (IOException)
        {
            return (-1, -1);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_process is not null)
        {
            try
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
            catch (InvalidOperationException)
            {
                // already gone
            }

            _process.Dispose();
        }

        if (_directory is not null)
        {
            try
            {
                Directory.Delete(_directory, recursive: true);
            }
            catch (IOException)
            {
                // best effort
            }
        }
    }
}
