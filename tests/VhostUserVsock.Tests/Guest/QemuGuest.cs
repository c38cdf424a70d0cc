using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace VhostUserVsock.Tests.Guest;

/// <summary>
/// A QEMU (TCG) guest booted from a <see cref="GuestImage"/> with the command of
/// shared/spec/guest.md: PVH vmlinux, busybox initramfs, memfd-backed shared memory, serial
/// console to a file that is followed line by line, and optionally the vhost-user vsock device.
/// The guest runs <see cref="QemuGuestOptions.Commands"/> and reports each as a RESULT line.
/// QEMU always runs under a hard timeout and is killed on dispose.
/// </summary>
public sealed class QemuGuest : IAsyncDisposable
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(20);

    private readonly Process _process;
    private readonly string _serialPath;
    private readonly string? _tempDirectory;
    private readonly Lock _gate = new();
    private readonly StringBuilder _log = new();
    private readonly StringBuilder _partialLine = new();
    private readonly List<string> _lines = [];
    private readonly List<GuestResult> _results = [];
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Source)> _waiters = [];
    private readonly StringBuilder _qemuOutput = new();
    private readonly TaskCompletionSource<GuestOutcome> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<GuestReadyInfo> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _timeout;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Task _pump;
    private readonly Decoder _decoder = Encoding.UTF8.GetDecoder();
    private int _disposed;
    private int? _exitCode;

    private QemuGuest(GuestImage image, QemuGuestOptions options, string serialPath, string? tempDirectory)
    {
        Image = image;
        Options = options;
        _serialPath = serialPath;
        _tempDirectory = tempDirectory;
        File.WriteAllBytes(serialPath, []);

        var qemuArgs = BuildQemuArguments(image, options, serialPath);
        var psi = new ProcessStartInfo
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // A second, outer limit: QEMU dies even if this process does (coreutils timeout).
        var timeoutTool = GuestImage.FindOnPath("timeout");
        if (timeoutTool is not null)
        {
            psi.FileName = timeoutTool;
            psi.ArgumentList.Add("--kill-after=5");
            psi.ArgumentList.Add(((int)Math.Ceiling(options.Timeout.TotalSeconds) + 15).ToString(CultureInfo.InvariantCulture));
            psi.ArgumentList.Add(options.QemuBinary);
        }
        else
        {
            psi.FileName = options.QemuBinary;
        }
        foreach (var a in qemuArgs)
            psi.ArgumentList.Add(a);
        CommandLine = string.Join(' ', psi.ArgumentList.Prepend(psi.FileName).Select(Quote));

        _process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) => AppendQemuOutput(e.Data);
        _process.ErrorDataReceived += (_, e) => AppendQemuOutput(e.Data);
        try
        {
            _process.Start();
        }
        catch
        {
            _process.Dispose();
            if (tempDirectory is not null)
                Directory.Delete(tempDirectory, recursive: true);
            throw;
        }
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        _timeout = new CancellationTokenSource(options.Timeout);
        _timeout.Token.Register(() =>
        {
            if (_completion.TrySetResult(GuestOutcome.TimedOut))
                KillProcess();
        });
        _pump = Task.Run(PumpAsync);
    }

    /// <summary>The image this guest boots.</summary>
    public GuestImage Image { get; }

    /// <summary>The options it was started with.</summary>
    public QemuGuestOptions Options { get; }

    /// <summary>The full command line (for diagnostics).</summary>
    public string CommandLine { get; }

    /// <summary>
    /// Completes when GUEST-DONE appears (all commands reported), QEMU exits, the hard timeout
    /// expires or <see cref="Kill"/> is called; whichever comes first.
    /// </summary>
    public Task<GuestOutcome> Completion => _completion.Task;

    /// <summary>Completes at GUEST-READY; faults if QEMU ends before it.</summary>
    public Task<GuestReadyInfo> Ready => _ready.Task;

    /// <summary>Completes when the QEMU process has exited and the serial log is read to its end.</summary>
    public Task Exited => _exited.Task;

    /// <summary>QEMU's exit code (124 = killed by the outer timeout), once <see cref="Exited"/> completed.</summary>
    public int? ExitCode
    {
        get { lock (_gate) return _exitCode; }
    }

    /// <summary>Time since start.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>Time from start to GUEST-READY, once seen.</summary>
    public TimeSpan? BootTime { get; private set; }

    /// <summary>The serial console text so far (\r removed).</summary>
    public string SerialLog
    {
        get { lock (_gate) return _log.ToString(); }
    }

    /// <summary>What QEMU printed on stdout/stderr (startup errors such as a missing socket).</summary>
    public string QemuOutput
    {
        get { lock (_gate) return _qemuOutput.ToString(); }
    }

    /// <summary>The RESULT lines so far, in order.</summary>
    public IReadOnlyList<GuestResult> Results
    {
        get { lock (_gate) return [.. _results]; }
    }

    /// <summary>The RESULT of command <paramref name="name"/>, if it ended.</summary>
    public GuestResult? Result(string name)
    {
        lock (_gate)
            return _results.LastOrDefault(r => r.Name == name);
    }

    /// <summary>Starts QEMU. Throws if the process cannot be started.</summary>
    public static QemuGuest Start(GuestImage image, QemuGuestOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        options ??= new QemuGuestOptions();
        string? temp = null;
        string serial;
        if (options.SerialLogPath is { } path)
        {
            serial = Path.GetFullPath(path);
        }
        else
        {
            temp = Directory.CreateTempSubdirectory("qemu-guest-").FullName;
            serial = Path.Combine(temp, "serial.log");
        }
        return new QemuGuest(image, options, serial, temp);
    }

    /// <summary>The QEMU arguments (without the binary) for a run.</summary>
    public static IReadOnlyList<string> BuildQemuArguments(GuestImage image, QemuGuestOptions options, string serialPath)
    {
        var mem = options.MemoryMiB.ToString(CultureInfo.InvariantCulture) + "M";
        var args = new List<string>
        {
            "-accel", "tcg", "-cpu", "qemu64", "-smp", "1", "-m", mem,
            "-object", $"memory-backend-memfd,id=mem,size={mem},share=on",
            "-machine", "q35,memory-backend=mem",
            "-nodefaults", "-nographic",
            "-chardev", $"file,id=serial0,path={EscapeOption(serialPath)}", "-serial", "chardev:serial0",
            "-monitor", "none",
            "-kernel", image.KernelPath, "-initrd", image.InitrdPath,
            "-append", BuildKernelCommandLine(options),
        };
        if (!options.AllowReboot)
            args.Add("-no-reboot");
        if (options.VhostUserSocketPath is { } socket)
        {
            args.AddRange(
            [
                "-chardev", $"socket,id=vsock0,path={EscapeOption(socket)}"
                    + (options.VhostUserReconnectSeconds is int reconnect ? FormattableString.Invariant($",reconnect={reconnect}") : string.Empty),
                "-device", $"{options.VsockDevice},chardev=vsock0",
            ]);
        }
        args.AddRange(options.ExtraQemuArguments);
        return args;
    }

    /// <summary>The guest kernel command line for <paramref name="options"/>.</summary>
    public static string BuildKernelCommandLine(QemuGuestOptions options)
    {
        var words = new List<string>
        {
            "console=ttyS0", "panic=-1", "quiet",
            "vsocktest.timeout=" + Seconds(options.CommandTimeout),
            // the guest powers itself off a little before the host kills it, and says so
            "vsocktest.deadline=" + Math.Max(10, Seconds(options.Timeout) - 5).ToString(CultureInfo.InvariantCulture),
        };
        if (options.LoadLoopback)
            words.Add("vsocktest.loopback=1");
        if (options.FullKernelLog)
            words.Add("vsocktest.dmesg=1");
        words.AddRange(options.ExtraKernelArguments);
        if (options.Commands.Count > 0)
            words.Add(GuestCommand.ToKernelArgument(options.Commands));
        return string.Join(' ', words);
    }

    /// <summary>
    /// Waits for a serial line matching <paramref name="match"/> (lines already seen count).
    /// Throws <see cref="TimeoutException"/> after <paramref name="timeout"/>, or
    /// <see cref="InvalidOperationException"/> when QEMU exits first; both carry <see cref="Describe"/>.
    /// </summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var tcs = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            var seen = _lines.FirstOrDefault(match);
            if (seen is not null)
                return seen;
            if (_exited.Task.IsCompleted)
                throw new InvalidOperationException("QEMU exited before the expected line appeared.\n" + DescribeLocked());
            _waiters.Add((match, tcs));
        }
        try
        {
            return await tcs.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"no matching serial line within {timeout.TotalSeconds:0.#} s.\n" + Describe());
        }
        finally
        {
            lock (_gate)
                _waiters.RemoveAll(w => w.Source == tcs);
        }
    }

    /// <summary>Waits for <c>OUT &lt;command&gt; &lt;prefix&gt;...</c>, e.g. a guest server's LISTENING line.</summary>
    public Task<string> WaitForOutputAsync(string command, string prefix, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        WaitForLineAsync(l => l.StartsWith($"OUT {command} {prefix}", StringComparison.Ordinal), timeout, cancellationToken);

    /// <summary>Waits for the RESULT of command <paramref name="name"/>.</summary>
    public async Task<GuestResult> WaitForResultAsync(string name, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var line = await WaitForLineAsync(
            l => GuestResult.TryParse(l) is { } r && r.Name == name, timeout, cancellationToken).ConfigureAwait(false);
        return GuestResult.TryParse(line)!;
    }

    /// <summary>Kills QEMU now (the "VMM died" scenario). <see cref="Completion"/> becomes Killed unless already done.</summary>
    public void Kill()
    {
        _completion.TrySetResult(GuestOutcome.Killed);
        KillProcess();
    }

    /// <summary>A multi-line description for assertion messages: outcome, exit code, QEMU output, serial log.</summary>
    public string Describe()
    {
        lock (_gate)
            return DescribeLocked();
    }

    /// <summary>Kills QEMU if it still runs, waits for it, deletes the temporary serial log.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        if (!_process.HasExited)
        {
            // after GUEST-DONE the guest powers off by itself: give it a moment
            if (_completion.Task.IsCompletedSuccessfully && _completion.Task.Result == GuestOutcome.Done)
                await Task.WhenAny(_exited.Task, Task.Delay(TimeSpan.FromSeconds(3))).ConfigureAwait(false);
            KillProcess();
        }
        await Task.WhenAny(_pump, Task.Delay(TimeSpan.FromSeconds(10))).ConfigureAwait(false);
        _timeout.Dispose();
        _process.Dispose();
        if (_tempDirectory is not null)
        {
            try
            {
                Directory.Delete(_tempDirectory, recursive: true);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }

    private async Task PumpAsync()
    {
        try
        {
            await using var stream = new FileStream(
                _serialPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
            var bytes = new byte[64 * 1024];
            var chars = new char[Encoding.UTF8.GetMaxCharCount(bytes.Length)];
            while (true)
            {
                bool exited = _process.HasExited;
                int n;
                while ((n = stream.Read(bytes, 0, bytes.Length)) > 0)
                {
                    int c = _decoder.GetChars(bytes, 0, n, chars, 0, flush: false);
                    Feed(chars.AsSpan(0, c));
                }
                if (exited)
                    break;
                await Task.Delay(PollInterval).ConfigureAwait(false);
            }
            await _process.WaitForExitAsync().ConfigureAwait(false);
            lock (_gate)
                _exitCode = _process.ExitCode;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            AppendQemuOutput($"[QemuGuest] serial log reader failed: {e.Message}");
        }
        finally
        {
            OnExited();
        }
    }

    private void Feed(ReadOnlySpan<char> text)
    {
        List<string>? lines = null;
        lock (_gate)
        {
            foreach (var ch in text)
            {
                if (ch == '\r')
                    continue;
                if (ch != '\n')
                {
                    _partialLine.Append(ch);
                    continue;
                }
                (lines ??= []).Add(_partialLine.ToString());
                _partialLine.Clear();
            }
        }
        if (lines is not null)
        {
            foreach (var line in lines)
                OnLine(line);
        }
    }

    private void OnLine(string line)
    {
        List<TaskCompletionSource<string>>? matched = null;
        lock (_gate)
        {
            _log.Append(line).Append('\n');
            _lines.Add(line);
            if (GuestResult.TryParse(line) is { } result)
                _results.Add(result);
            foreach (var (match, source) in _waiters)
            {
                if (match(line))
                    (matched ??= []).Add(source);
            }
        }
        if (matched is not null)
        {
            foreach (var source in matched)
                source.TrySetResult(line);
        }
        if (GuestReadyInfo.TryParse(line) is { } ready)
        {
            BootTime ??= _clock.Elapsed;
            _ready.TrySetResult(ready);
        }
        if (line == "GUEST-DONE")
            _completion.TrySetResult(GuestOutcome.Done);
    }

    private void OnExited()
    {
        string? rest = null;
        lock (_gate)
        {
            if (_partialLine.Length > 0)
            {
                rest = _partialLine.ToString();
                _partialLine.Clear();
            }
        }
        if (rest is not null)
            OnLine(rest);
        List<TaskCompletionSource<string>> waiters;
        string description;
        lock (_gate)
        {
            waiters = [.. _waiters.Select(w => w.Source)];
            _waiters.Clear();
            description = DescribeLocked();
        }
        foreach (var w in waiters)
            w.TrySetException(new InvalidOperationException("QEMU exited before the expected line appeared.\n" + description));
        _ready.TrySetException(new InvalidOperationException("QEMU exited before GUEST-READY.\n" + description));
        _completion.TrySetResult(GuestOutcome.Exited);
        _exited.TrySetResult();
    }

    private void KillProcess()
    {
        try
        {
            if (!_process.HasExited)
                _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // already exited
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // exiting
        }
    }

    private void AppendQemuOutput(string? line)
    {
        if (line is null)
            return;
        lock (_gate)
            _qemuOutput.Append(line).Append('\n');
    }

    private string DescribeLocked()
    {
        var outcome = _completion.Task.IsCompleted ? _completion.Task.Result.ToString() : "running";
        var exit = _exitCode?.ToString(CultureInfo.InvariantCulture) ?? "-";
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"QEMU guest {Image}: outcome {outcome}, exit code {exit}, after {_clock.Elapsed.TotalSeconds:0.0} s\n");
        sb.Append("command: ").Append(CommandLine).Append('\n');
        if (_qemuOutput.Length > 0)
            sb.Append("qemu output:\n").Append(_qemuOutput);
        sb.Append("---- serial log ----\n").Append(_log);
        if (_partialLine.Length > 0)
            sb.Append(_partialLine).Append('\n');
        sb.Append("--------------------");
        return sb.ToString();
    }

    private static int Seconds(TimeSpan t) => (int)Math.Ceiling(t.TotalSeconds);

    private static string EscapeOption(string value) => value.Replace(",", ",,", StringComparison.Ordinal);

    private static string Quote(string arg) =>
        arg.Length > 0 && arg.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@%".Contains(c)) ? arg : "'" + arg.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
