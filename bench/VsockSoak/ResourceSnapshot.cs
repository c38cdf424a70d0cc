using System.Globalization;
using Virtio.Vsock.Device;

namespace VsockSoak;

/// <summary>
/// The process's and the device's resource figures at one moment: resident memory and open fds (from
/// /proc/self), live device connections and bytes the device buffers. Owns values only.
/// </summary>
internal readonly record struct ResourceSnapshot(long RssBytes, int OpenFds, int Connections, long BufferedBytes)
{
    /// <summary>Reads the figures now.</summary>
    public static ResourceSnapshot Take(VsockDevice device) =>
        new(ReadRss(), CountFds(), device.ConnectionCount, device.Metrics.BufferedBytes);

    /// <summary>The larger of each figure.</summary>
    public ResourceSnapshot Max(ResourceSnapshot other) => new(
        Math.Max(RssBytes, other.RssBytes), Math.Max(OpenFds, other.OpenFds), Math.Max(Connections, other.Connections), Math.Max(BufferedBytes, other.BufferedBytes));

    /// <inheritdoc/>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"rss {RssBytes / (1024.0 * 1024):F1} MiB, fds {OpenFds}, connections {Connections}, buffered {BufferedBytes} B");

    private static long ReadRss()
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                string kb = line["VmRSS:".Length..].Trim().Split(' ')[0];
                return long.Parse(kb, CultureInfo.InvariantCulture) * 1024;
            }
        }

        return -1;
    }

    // The enumeration's own directory fd is counted every time, so figures compare.
    private static int CountFds() => Directory.EnumerateFileSystemEntries("/proc/self/fd").Count();
}
