using System.Runtime.CompilerServices;

namespace VhostUserVsock.Tests.Guest;

/// <summary>
/// A guest built by tests/guest/build-guest.sh: <c>.work/guest/&lt;suite&gt;/vmlinux</c> and
/// <c>initramfs.cpio.gz</c> under the repository root (the folder holding VirtioVsock.slnx).
/// </summary>
public sealed class GuestImage
{
    /// <summary>The script that installs the Debian packages and builds the guests.</summary>
    public const string InstallScript = "scripts/install-test-deps.sh";

    /// <summary>The QEMU binary (Debian package qemu-system-x86).</summary>
    public const string QemuBinary = "qemu-system-x86_64";

    private GuestImage(string suite, string directory, string? kernelVersion)
    {
        Suite = suite;
        Directory = directory;
        KernelVersion = kernelVersion;
    }

    /// <summary>bookworm or trixie (see <see cref="GuestSuite"/>).</summary>
    public string Suite { get; }

    /// <summary><c>&lt;repo&gt;/.work/guest/&lt;suite&gt;</c>.</summary>
    public string Directory { get; }

    /// <summary>The uncompressed kernel QEMU boots via PVH.</summary>
    public string KernelPath => Path.Combine(Directory, "vmlinux");

    /// <summary>The busybox initramfs with vsocktest and the vsock modules.</summary>
    public string InitrdPath => Path.Combine(Directory, "initramfs.cpio.gz");

    /// <summary>The guest kernel release (e.g. 6.1.0-57-amd64), if recorded.</summary>
    public string? KernelVersion { get; }

    /// <summary>
    /// Finds the guest of <paramref name="suite"/>. Returns null and says in
    /// <paramref name="missing"/> what is missing and which Debian package or script provides it.
    /// </summary>
    public static GuestImage? TryLocate(string suite, out string missing)
    {
        var root = FindRepositoryRoot();
        if (root is null)
        {
            missing = "cannot find the repository root (a folder with VirtioVsock.slnx) above "
                + $"{AppContext.BaseDirectory} or {Environment.CurrentDirectory}; set VIRTIOVSOCK_ROOT";
            return null;
        }
        var dir = Path.Combine(root, ".work", "guest", suite);
        var problems = new List<string>();
        foreach (var file in new[] { "vmlinux", "initramfs.cpio.gz" })
        {
            if (!File.Exists(Path.Combine(dir, file)))
                problems.Add($".work/guest/{suite}/{file}");
        }
        if (problems.Count > 0)
            problems[^1] += $" (run {InstallScript} as root, or tests/guest/build-guest.sh .work/guest {suite}; "
                + "it needs the Debian packages busybox-static cpio kmod xz-utils zstd gcc libc6-dev)";
        if (FindOnPath(QemuBinary) is null)
            problems.Add($"{QemuBinary} (Debian package qemu-system-x86; {InstallScript} installs it)");
        if (problems.Count > 0)
        {
            missing = "missing: " + string.Join("; ", problems);
            return null;
        }
        missing = "";
        var versionFile = Path.Combine(dir, "kernel-version");
        var version = File.Exists(versionFile) ? File.ReadAllText(versionFile).Trim() : null;
        return new GuestImage(suite, dir, version);
    }

    /// <summary>
    /// The repository root: VIRTIOVSOCK_ROOT if set, else the first folder holding
    /// VirtioVsock.slnx above the test binaries, the current directory or this source file.
    /// </summary>
    public static string? FindRepositoryRoot()
    {
        var env = Environment.GetEnvironmentVariable("VIRTIOVSOCK_ROOT");
        if (!string.IsNullOrEmpty(env) && File.Exists(Path.Combine(env, "VirtioVsock.slnx")))
            return Path.GetFullPath(env);
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory, SourceDirectory() })
        {
            for (var d = string.IsNullOrEmpty(start) ? null : new DirectoryInfo(start); d is not null; d = d.Parent)
            {
                if (File.Exists(Path.Combine(d.FullName, "VirtioVsock.slnx")))
                    return d.FullName;
            }
        }
        return null;
    }

    /// <summary>The full path of <paramref name="program"/> on PATH, or null.</summary>
    public static string? FindOnPath(string program)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator))
        {
            if (dir.Length == 0)
                continue;
            var candidate = Path.Combine(dir, program);
            if (File.Exists(candidate))
                return candidate;
        }
        return null;
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Suite} guest ({KernelVersion ?? "?"}) in {Directory}";

    private static string? SourceDirectory([CallerFilePath] string path = "") =>
        Path.IsPathRooted(path) && File.Exists(path) ? Path.GetDirectoryName(path) : null;
}
