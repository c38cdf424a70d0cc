using System.Runtime.Versioning;
using VhostUserVsock.Configuration;

namespace VhostUserVsock.Tests.Cli;

[SupportedOSPlatform("linux")]
public sealed class DefaultPathsTests
{
    [Theory]
    [InlineData("/run/user/1000", "/run/user/1000/vhost-user-vsock")]
    [InlineData(null, "/tmp/vhost-user-vsock")]
    [InlineData("", "/tmp/vhost-user-vsock")]
    [InlineData("relative/dir", "/tmp/vhost-user-vsock")]
    public void Directory_follows_xdg_runtime_dir(string? xdg, string expected)
    {
        DefaultPaths paths = DefaultPaths.FromRuntimeDirectory(xdg);

        Assert.Equal(expected, paths.Directory);
        Assert.Equal(expected + "/vhost-user-vsock-3.sock", paths.SocketPath(3));
        Assert.Equal(expected + "/vsock-3.sock", paths.UdsPath(3));
        Assert.Equal(new VmConfig { SocketPath = expected + "/vhost-user-vsock-3.sock", UdsPath = expected + "/vsock-3.sock" }, paths.DefaultVm());
    }

    [Fact]
    public void EnsureDirectoryExists_creates_a_private_directory()
    {
        using var dir = new TempDirectory();
        DefaultPaths paths = DefaultPaths.FromRuntimeDirectory(dir.Path);

        paths.EnsureDirectoryExists();
        paths.EnsureDirectoryExists();

        Assert.True(Directory.Exists(paths.Directory));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(paths.Directory));
    }

    [Fact]
    public void EnsureDirectoryExists_reports_failure_on_one_line()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("vhost-user-vsock"), "a file in the way");

        var error = Assert.Throws<ConfigurationException>(() => DefaultPaths.FromRuntimeDirectory(dir.Path).EnsureDirectoryExists());

        Assert.StartsWith($"cannot create the socket directory '{dir.File("vhost-user-vsock")}': ", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }
}
