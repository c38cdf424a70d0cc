using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using VhostUserVsock.Tests.Guest;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// The built daemon (<c>vhost-user-vsock.dll</c>, copied next to this test assembly because the
/// test project references the daemon project) run as a child process for one guest, with its
/// sockets in a fresh temporary folder. Its stderr (the log) is captured for assertion messages.
/// Always killed on dispose.
/// </summary>
public sealed partial class DaemonProcess : IAsyncDisposable
{
    /// <summary>The daemon's file name.</summary>
    public const string DaemonFileName = "vhost-user-vsock.dll";

    private static readonly TimeSpan StopWait = TimeSpan.FromSeconds(5);

    private readonly Process _process;
    private readonly StringBuilder _log = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;

    private DaemonProcess(Process process, string directory, string socketPath, string udsPath, ulong guestCid)
    {
        _process = process;
        Directory = directory;
        SocketPath = socketPath;
        UdsPath = udsPath;
        GuestCid = guestCid;
        VmSocketPaths = new Dictionary<ulong, string> { [guestCid] = socketPath };
    }

    /// <summary>Every VM's vhost-user socket by guest CID (one entry unless started by <see cref="StartSiblingsAsync"/>).</summary>
    public IReadOnlyDictionary<ulong, string> VmSocketPaths { get; private set; }

    /// <summary>The temporary folder holding the sockets (deleted on dispose).</summary>
    public string Directory { get; }

    /// <summary>The vhost-user socket QEMU connects to (<c>--socket</c>).</summary>
    public string SocketPath { get; }

    /// <summary>The hybrid-vsock socket (<c>--uds-path</c>): host-initiated connections; <c>_PORT</c> suffixes for guest-initiated ones.</summary>
    public string UdsPath { get; }

    /// <summary>The guest's CID (<c>--guest-cid</c>).</summary>
    public ulong GuestCid { get; }

    /// <summary>The daemon's process id.</summary>
    public int ProcessId => _process.Id;

    /// <summary>True once the process has exited.</summary>
    public bool HasExited => _exited.Task.IsCompleted;

    /// <summary>The exit code, once exited.</summary>
    public int? ExitCode => HasExited ? _process.ExitCode : null;

    /// <summary>Everything the daemon wrote (stderr and stdout, interleaved by line).</summary>
    public string Log
    {
        get
        {
            lock (_log)
                return _log.ToString();
        }
    }

    /// <summary>
    /// Where the daemon is: next to this test assembly, else the daemon project's own output
    /// folder for this test build's configuration. Null when neither exists.
    /// </summary>
    public static string? Locate()
    {
        var beside = Path.Join(AppContext.BaseDirectory, DaemonFileName);
        if (File.Exists(beside))
            return beside;
        var configuration = typeof(DaemonProcess).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        if (GuestImage.FindRepositoryRoot() is { } root)
        {
            var own = Path.Join(root, "src", "vhost-user-vsock", "bin", configuration, "net10.0", DaemonFileName);
            if (File.Exists(own))
                return own;
        }
        return null;
    }

    /// <summary>
    /// Starts the daemon for one guest and waits until both its sockets exist. Throws (with the
    /// daemon's log) when it exits first or the sockets do not appear within <paramref name="startTimeout"/>.
    /// </summary>
    /// <param name="guestCid">The guest CID.</param>
    /// <param name="startTimeout">How long to wait for the sockets.</param>
    /// <param name="logLevel">The daemon's <c>--log-level</c>.</param>
    /// <param name="extraArguments">More daemon arguments (e.g. <c>--tx-buffer-size</c>).</param>
    /// <param name="cancellationToken">Cancels the wait (the daemon is killed).</param>
    public static async Task<DaemonProcess> StartAsync(
        ulong guestCid = 3,
        TimeSpan? startTimeout = null,
        string logLevel = "information",
        IEnumerable<string>? extraArguments = null,
        CancellationToken cancellationToken = default)
    {
        // short: socket paths must stay under 108 bytes
        var directory = System.IO.Directory.CreateTempSubdirectory("vuvg-").FullName;
        var socketPath = Path.Join(directory, "vhost-user.sock");
        var udsPath = Path.Join(directory, "vsock.sock");
        string[] arguments = ["--guest-cid", guestCid.ToString(CultureInfo.InvariantCulture), "--socket", socketPath, "--uds-path", udsPath];
        return await StartCoreAsync(directory, guestCid, udsPath, arguments, new Dictionary<ulong, string> { [guestCid] = socketPath }, startTimeout, logLevel, extraArguments, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Starts a daemon serving one VM described in a config file (<c>--config</c>): guest CID
    /// <paramref name="guestCid"/>, its sockets in a new directory, and <paramref name="vmYaml"/> appended to the
    /// VM's entry (e.g. an <c>allow</c> list, indented by four spaces); waits until the socket exists.
    /// </summary>
    /// <param name="vmYaml">More keys of the VM's entry, each line indented by four spaces.</param>
    /// <param name="guestCid">The guest CID.</param>
    /// <param name="logLevel">The daemon's <c>--log-level</c>.</param>
    /// <param name="extraArguments">More command-line arguments (e.g. <c>--allow</c>).</param>
    /// <param name="cancellationToken">Cancels the wait (the daemon is killed).</param>
    public static async Task<DaemonProcess> StartFromConfigAsync(
        string vmYaml,
        ulong guestCid = 3,
        string logLevel = "information",
        IEnumerable<string>? extraArguments = null,
        CancellationToken cancellationToken = default)
    {
        var directory = System.IO.Directory.CreateTempSubdirectory("vuvc-").FullName;
        var socketPath = Path.Join(directory, "vhost-user.sock");
        var udsPath = Path.Join(directory, "vsock.sock");
        var configPath = Path.Join(directory, "vms.yaml");
        await File.WriteAllTextAsync(
            configPath,
            $"vms:\n  - guest_cid: {guestCid.ToString(CultureInfo.InvariantCulture)}\n    socket: {socketPath}\n    uds_path: {udsPath}\n{vmYaml}",
            cancellationToken).ConfigureAwait(false);
        return await StartCoreAsync(directory, guestCid, udsPath, ["--config", configPath], new Dictionary<ulong, string> { [guestCid] = socketPath }, null, logLevel, extraArguments, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Starts one daemon serving one VM per CID in <paramref name="guestCids"/>, all in sibling group
    /// <paramref name="group"/> (<c>--vm guest-cid=N,socket=...,uds-path=...,groups=...</c>), so the
    /// guests reach each other by CID; waits until every socket exists. <see cref="SocketPath"/> and
    /// <see cref="UdsPath"/> are the first VM's; <see cref="VmSocketPaths"/> has all.
    /// </summary>
    /// <param name="guestCids">The guest CIDs, at least one.</param>
    /// <param name="group">The sibling group every VM joins.</param>
    /// <param name="startTimeout">How long to wait for the sockets.</param>
    /// <param name="logLevel">The daemon's <c>--log-level</c>.</param>
    /// <param name="cancellationToken">Cancels the wait (the daemon is killed).</param>
    public static async Task<DaemonProcess> StartSiblingsAsync(
        IReadOnlyList<ulong> guestCids,
        string group = "suite",
        TimeSpan? startTimeout = null,
        string logLevel = "information",
        CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfZero(guestCids.Count);
        var directory = System.IO.Directory.CreateTempSubdirectory("vuvs-").FullName;
        var arguments = new List<string>();
        var sockets = new Dictionary<ulong, string>();
        foreach (var cid in guestCids)
        {
            var c = cid.ToString(CultureInfo.InvariantCulture);
            sockets[cid] = Path.Join(directory, $"vu{c}.sock");
            arguments.Add("--vm");
            arguments.Add($"guest-cid={c},socket={sockets[cid]},uds-path={Path.Join(directory, $"vs{c}.sock")},groups={group}");
        }
        var udsPath = Path.Join(directory, $"vs{guestCids[0].ToString(CultureInfo.InvariantCulture)}.sock");
        return await StartCoreAsync(directory, guestCids[0], udsPath, arguments, sockets, startTimeout, logLevel, null, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<DaemonProcess> StartCoreAsync(
        string directory,
        ulong guestCid,
        string udsPath,
        IEnumerable<string> vmArguments,
        IReadOnlyDictionary<ulong, string> sockets,
        TimeSpan? startTimeout,
        string logLevel,
        IEnumerable<string>? extraArguments,
        CancellationToken cancellationToken)
    {
        var dll = Locate() ?? throw new InvalidOperationException(
            $"the daemon is not built: no {DaemonFileName} in {AppContext.BaseDirectory} (the test project references src/vhost-user-vsock, so a build of the tests copies it there)");
        var socketPath = sockets[guestCid];
        var start = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "exec", dll }.Concat(vmArguments).Concat(["--log-level", logLevel]))
            start.ArgumentList.Add(arg);
        foreach (var arg in extraArguments ?? [])
            start.ArgumentList.Add(arg);

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var daemon = new DaemonProcess(process, directory, socketPath, udsPath, guestCid) { VmSocketPaths = sockets };
        process.OutputDataReceived += (_, e) => daemon.Append(e.Data);
        process.ErrorDataReceived += (_, e) => daemon.Append(e.Data);
        process.Exited += (_, _) => daemon._exited.TrySetResult();
        try
        {
            process.Start();
        }
        catch
        {
            process.Dispose();
            TryDeleteDirectory(directory);
            throw;
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (process.HasExited)
            daemon._exited.TrySetResult();

        try
        {
            await daemon.WaitForSocketsAsync(startTimeout ?? TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await daemon.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return daemon;
    }

    /// <summary>Throws with the log when the daemon has exited (it must outlive every guest).</summary>
    public void AssertRunning(string when)
    {
        if (HasExited)
            throw new InvalidOperationException($"the daemon exited {when} (exit code {_process.ExitCode}).\n{Describe()}");
    }

    /// <summary>Kills the daemon with SIGKILL (no cleanup runs: its socket files stay) and waits until it is gone.</summary>
    public async Task KillAsync(TimeSpan wait)
    {
        if (!HasExited)
            _ = SendSignal(_process.Id, SigKill);
        await _exited.Task.WaitAsync(wait).ConfigureAwait(false);
    }

    /// <summary>The number of fds the daemon has open now (entries of /proc/PID/fd).</summary>
    public int OpenFdCount() => System.IO.Directory.GetFileSystemEntries($"/proc/{_process.Id}/fd").Length;

    /// <summary>Waits until the daemon's log contains <paramref name="text"/>; false at the deadline.</summary>
    public async Task<bool> WaitForLogAsync(string text, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        while (!Log.Contains(text, StringComparison.Ordinal))
        {
            if (watch.Elapsed > timeout || HasExited)
                return false;
            await Task.Delay(50, cancellationToken).ConfigureAwait(false); // poll interval under the timeout
        }

        return true;
    }

    /// <summary>A description for assertion messages: command, state and the log.</summary>
    public string Describe()
    {
        var state = HasExited ? $"exited with {_process.ExitCode}" : "running";
        return $"daemon pid {_process.Id} ({state}, {_clock.Elapsed.TotalSeconds:0.0} s): --socket {SocketPath} --uds-path {UdsPath}\n---- daemon log ----\n{Log}--------------------";
    }

    /// <summary>Stops the daemon (SIGTERM, then SIGKILL after a few seconds) and deletes its folder.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        try
        {
            if (!HasExited)
            {
                _ = SendSignal(_process.Id, SigTerm);
                await Task.WhenAny(_exited.Task, Task.Delay(StopWait)).ConfigureAwait(false);
                if (!HasExited)
                {
                    Append($"[DaemonProcess] no exit within {StopWait.TotalSeconds:0} s of SIGTERM: killing it");
                    try
                    {
                        _process.Kill(entireProcessTree: true);
                    }
                    catch (InvalidOperationException)
                    {
                    }
                    await Task.WhenAny(_exited.Task, Task.Delay(StopWait)).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _process.Dispose();
            TryDeleteDirectory(Directory);
        }
    }

    private async Task WaitForSocketsAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        while (!(VmSocketPaths.Values.All(File.Exists) && File.Exists(UdsPath)))
        {
            if (HasExited)
                throw new InvalidOperationException($"the daemon exited before its sockets appeared.\n{Describe()}");
            try
            {
                await Task.Delay(25, cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"the daemon's sockets did not appear within {timeout.TotalSeconds:0} s.\n{Describe()}");
            }
        }
    }

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_log)
            _log.Append(line).Append('\n');
    }

    private static void TryDeleteDirectory(string directory)
    {
        try
        {
            System.IO.Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static string DotnetHost()
    {
        var fromSdk = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(fromSdk) && File.Exists(fromSdk))
            return fromSdk;
        // <root>/shared/Microsoft.NETCore.App/<version>/ -> <root>/dotnet
        var root = Path.GetFullPath(Path.Join(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        var host = Path.Join(root, "dotnet");
        return File.Exists(host) ? host : "dotnet";
    }

    private const int SigTerm = 15;
    private const int SigKill = 9;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int processId, int signal);
}
