using System.Globalization;
using System.Text;

namespace VhostUserVsock.Configuration;

/// <summary>
/// Checks a <see cref="DaemonConfig"/> before anything starts: every VM's values in range, no
/// two VMs with the same CID or path, and every socket path usable (its directory exists and is
/// writable, and the path is free or a stale socket nobody listens on). Each problem is one line.
/// </summary>
public static class ConfigValidator
{
    /// <summary>Validates and throws on the first problem.</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="probe">How to examine the file system; <see cref="UnixFileSystemProbe.Instance"/> when <see langword="null"/>.</param>
    /// <exception cref="ConfigurationException">The configuration cannot be served; the message is the first problem.</exception>
    public static void Validate(DaemonConfig config, IFileSystemProbe? probe = null)
    {
        IReadOnlyList<string> problems = FindProblems(config, probe);
        if (problems.Count > 0)
        {
            throw new ConfigurationException(problems[0]);
        }
    }

    /// <summary>Lists every problem, each a one-line message, in configuration order.</summary>
    /// <param name="config">The configuration.</param>
    /// <param name="probe">How to examine the file system; <see cref="UnixFileSystemProbe.Instance"/> when <see langword="null"/>.</param>
    /// <returns>The problems; empty when the configuration can be served.</returns>
    public static IReadOnlyList<string> FindProblems(DaemonConfig config, IFileSystemProbe? probe = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        probe ??= UnixFileSystemProbe.Instance;
        var problems = new List<string>();
        if (config.Vms.IsDefaultOrEmpty)
        {
            problems.Add("no VM to serve");
            return problems;
        }

        var cids = new Dictionary<ulong, int>();
        var paths = new Dictionary<string, (int Vm, string Role)>(StringComparer.Ordinal);
        for (int index = 0; index < config.Vms.Length; index++)
        {
            VmConfig vm = config.Vms[index];
            int number = index + 1;
            string label = string.Create(CultureInfo.InvariantCulture, $"VM {number}");
            AddIfProblem(problems, label, VmLimits.DescribeGuestCidProblem(vm.GuestCid));
            AddIfProblem(problems, label, VmLimits.DescribeTxBufferSizeProblem(vm.TxBufferSize));
            AddIfProblem(problems, label, VmLimits.DescribeQueueSizeProblem(vm.QueueSize));
            if (vm.Groups.IsEmpty)
            {
                problems.Add($"{label}: no group (the default is '{VmDefaults.GroupName}')");
            }

            foreach (string group in vm.Groups)
            {
                AddIfProblem(problems, label, VmLimits.DescribeGroupNameProblem(group));
            }

            if (cids.TryGetValue(vm.GuestCid, out int firstWithCid))
            {
                problems.Add(string.Create(CultureInfo.InvariantCulture, $"VMs {firstWithCid} and {number} both have guest CID {vm.GuestCid}"));
            }
            else
            {
                cids.Add(vm.GuestCid, number);
            }

            CheckPath(problems, paths, probe, number, "socket", vm.SocketPath);
            CheckPath(problems, paths, probe, number, "uds-path", vm.UdsPath);
        }

        return problems;
    }

    private static void AddIfProblem(List<string> problems, string label, string? problem)
    {
        if (problem is not null)
        {
            problems.Add($"{label}: {problem}");
        }
    }

    private static void CheckPath(
        List<string> problems,
        Dictionary<string, (int Vm, string Role)> paths,
        IFileSystemProbe probe,
        int number,
        string role,
        string path)
    {
        string label = string.Create(CultureInfo.InvariantCulture, $"VM {number}: {role} path");
        if (string.IsNullOrWhiteSpace(path))
        {
            problems.Add($"{label} is empty");
            return;
        }

        string shown = $"'{ConfigText.Printable(path)}'";
        if (path.Contains('\0', StringComparison.Ordinal))
        {
            problems.Add($"{label} {shown} contains a NUL character");
            return;
        }

        if (!Path.IsPathFullyQualified(path))
        {
            problems.Add($"{label} {shown} is not absolute");
            return;
        }

        if (paths.TryGetValue(path, out (int Vm, string Role) first))
        {
            problems.Add(first.Vm == number
                ? string.Create(CultureInfo.InvariantCulture, $"VM {number}: socket and uds-path are the same path {shown}")
                : string.Create(CultureInfo.InvariantCulture, $"VMs {first.Vm} and {number} both use the path {shown} ({first.Role} of VM {first.Vm}, {role} of VM {number})"));
            return;
        }

        paths.Add(path, (number, role));
        int bytes = Encoding.UTF8.GetByteCount(path);
        if (bytes > VmLimits.MaxUnixSocketPathBytes)
        {
            problems.Add(string.Create(
                CultureInfo.InvariantCulture,
                $"{label} {shown} is {bytes} bytes long; a Unix socket path is at most {VmLimits.MaxUnixSocketPathBytes}"));
            return;
        }

        string directory = Path.GetDirectoryName(path) ?? "/";
        string shownDirectory = $"'{ConfigText.Printable(directory)}'";
        switch (probe.GetKind(directory))
        {
            case PathKind.Directory:
                break;
            case PathKind.Missing:
                problems.Add($"{label} {shown}: directory {shownDirectory} does not exist");
                return;
            case PathKind.Unknown:
                problems.Add($"{label} {shown}: directory {shownDirectory} cannot be examined (permission denied?)");
                return;
            default:
                problems.Add($"{label} {shown}: {shownDirectory} is not a directory");
                return;
        }

        if (!probe.IsWritableDirectory(directory))
        {
            problems.Add($"{label} {shown}: directory {shownDirectory} is not writable");
            return;
        }

        switch (probe.GetKind(path))
        {
            case PathKind.Missing:
                break;
            case PathKind.Socket when probe.IsListening(path):
                problems.Add($"{label} {shown} is in use: a process is listening on it");
                break;
            case PathKind.Socket:
                // A stale socket left by a process that is gone: replaced at start.
                break;
            case PathKind.Directory:
                problems.Add($"{label} {shown} is an existing directory");
                break;
            case PathKind.Unknown:
                problems.Add($"{label} {shown} cannot be examined");
                break;
            default:
                problems.Add($"{label} {shown} exists and is not a socket (refusing to replace it)");
                break;
        }
    }
}
