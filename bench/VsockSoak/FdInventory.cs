using System.Globalization;

namespace VsockSoak;

/// <summary>
/// What the process's open fds point at (from /proc/self/fd), and for Unix sockets their bound path and
/// state (from /proc/net/unix), so a leak at the end can be named. Owns a snapshot; diagnostics only.
/// </summary>
internal sealed class FdInventory
{
    private readonly Dictionary<int, string> _targets;

    private FdInventory(Dictionary<int, string> targets) => _targets = targets;

    /// <summary>Reads the fds now.</summary>
    public static FdInventory Take()
    {
        var targets = new Dictionary<int, string>();
        foreach (string entry in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            if (int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out int fd))
            {
                try
                {
                    targets[fd] = new FileInfo(entry).LinkTarget ?? "?";
                }
                catch (IOException)
                {
                }
            }
        }

        return new FdInventory(targets);
    }

    /// <summary>Describes the fds open now that were not open (or pointed elsewhere) in <paramref name="earlier"/>.</summary>
    public IReadOnlyList<string> DescribeNewSince(FdInventory earlier, int max = 40)
    {
        Dictionary<string, string> unix = ReadUnixSockets();
        var lines = new List<string>();
        foreach ((int fd, string target) in _targets.OrderBy(pair => pair.Key))
        {
            if (earlier._targets.TryGetValue(fd, out string? before) && before == target)
            {
                continue;
            }

            string inode = target.StartsWith("socket:[", StringComparison.Ordinal) ? target[8..^1] : string.Empty;
            string detail = unix.TryGetValue(inode, out string? info) ? $" unix {info}" : string.Empty;
            lines.Add($"fd {fd} -> {target}{detail}");
            if (lines.Count == max)
            {
                break;
            }
        }

        return lines;
    }

    private static Dictionary<string, string> ReadUnixSockets()
    {
        // Num RefCount Protocol Flags Type St Inode [Path]
        var sockets = new Dictionary<string, string>();
        foreach (string line in File.ReadLines("/proc/net/unix").Skip(1))
        {
            string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length >= 7)
            {
                string path = fields.Length > 7 ? fields[7] : "(no path)";
                sockets[fields[6]] = $"type {fields[4]} state {fields[5]} flags {fields[3]} {path}";
            }
        }

        return sockets;
    }
}
