using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace VhostUserVsock.Tests.Cli;

/// <summary>The built daemon (vhost-user-vsock.dll next to the tests) run as a child process with captured output.</summary>
internal sealed class DaemonProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    private DaemonProcess(Process process)
    {
        _process = process;
    }

    public static string DaemonPath => Path.Join(AppContext.BaseDirectory, "vhost-user-vsock.dll");

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public string Stdout
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>Starts the daemon; with <paramref name="launcher"/>, as that program's command (e.g. systemd-socket-activate -l PATH).</summary>
    public static DaemonProcess Start(IEnumerable<string> args, IDictionary<string, string?>? environment = null, IReadOnlyList<string>? launcher = null)
    {
        Assert.True(File.Exists(DaemonPath), $"the daemon is not built next to the tests: {DaemonPath}");
        var start = new ProcessStartInfo(launcher is null ? DotnetHost() : launcher[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (launcher is not null)
        {
            foreach (string arg in launcher.Skip(1))
            {
                start.ArgumentList.Add(arg);
            }

            start.ArgumentList.Add(DotnetHost());
        }

        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(DaemonPath);
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach ((string name, string? value) in environment ?? new Dictionary<string, string?>())
        {
            start.Environment[name] = value;
        }

        var process = new Process { StartInfo = start };
        var daemon = new DaemonProcess(process);
        process.OutputDataReceived += (_, e) => Append(daemon._stdout, e.Data);
        process.ErrorDataReceived += (_, e) => Append(daemon._stderr, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return daemon;
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"the daemon did not exit within {timeout.TotalSeconds} s; stderr:\n{Stderr}");
        }

        // The process is gone; this returns once its redirected output has been read to the end.
        _process.WaitForExit();
        return _process.ExitCode;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }

        _process.Dispose();
    }

    private static void Append(StringBuilder builder, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (builder)
        {
            builder.Append(line).Append('\n');
        }
    }

    private static string DotnetHost()
    {
        string? fromSdk = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(fromSdk) && File.Exists(fromSdk))
        {
            return fromSdk;
        }

        // <root>/shared/Microsoft.NETCore.App/<version>/ -> <root>/dotnet
        string runtime = RuntimeEnvironment.GetRuntimeDirectory();
        string root = Path.GetFullPath(Path.Join(runtime, "..", "..", ".."));
        string host = Path.Join(root, "dotnet");
        return File.Exists(host) ? host : "dotnet";
    }
}
