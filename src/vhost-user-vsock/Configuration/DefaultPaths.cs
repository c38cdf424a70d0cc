using System.Globalization;

namespace VhostUserVsock.Configuration;

/// <summary>
/// Where the daemon puts its sockets when run without VM arguments:
/// <c>$XDG_RUNTIME_DIR/vhost-user-vsock/</c>, or <c>/tmp/vhost-user-vsock/</c> when
/// <c>XDG_RUNTIME_DIR</c> is unset (or not an absolute path). For guest CID N the vhost-user
/// socket is <c>vhost-user-vsock-N.sock</c> and the host-side socket <c>vsock-N.sock</c>.
/// </summary>
/// <param name="Directory">The directory holding the sockets, absolute.</param>
public sealed record DefaultPaths(string Directory)
{
    /// <summary>The name of the daemon's directory under the runtime directory.</summary>
    public const string DirectoryName = "vhost-user-vsock";

    /// <summary>The runtime directory used when <c>XDG_RUNTIME_DIR</c> is unset.</summary>
    public const string FallbackRuntimeDirectory = "/tmp";

    /// <summary>The layout for the current process's environment.</summary>
    /// <returns>The default paths.</returns>
    public static DefaultPaths FromEnvironment() =>
        FromRuntimeDirectory(Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR"));

    /// <summary>The layout for a given <c>XDG_RUNTIME_DIR</c> value.</summary>
    /// <param name="xdgRuntimeDirectory">The variable's value; <see langword="null"/>, empty or relative means unset (as the XDG spec says).</param>
    /// <returns>The default paths.</returns>
    public static DefaultPaths FromRuntimeDirectory(string? xdgRuntimeDirectory)
    {
        string runtime = !string.IsNullOrEmpty(xdgRuntimeDirectory) && Path.IsPathFullyQualified(xdgRuntimeDirectory)
            ? xdgRuntimeDirectory
            : FallbackRuntimeDirectory;
        return new DefaultPaths(Path.Join(runtime, DirectoryName));
    }

    /// <summary>The default vhost-user socket of a guest: <c>&lt;Directory&gt;/vhost-user-vsock-&lt;cid&gt;.sock</c>.</summary>
    /// <param name="guestCid">The guest's CID.</param>
    /// <returns>The path.</returns>
    public string SocketPath(ulong guestCid) =>
        Path.Join(Directory, string.Create(CultureInfo.InvariantCulture, $"vhost-user-vsock-{guestCid}.sock"));

    /// <summary>The default host-side socket of a guest: <c>&lt;Directory&gt;/vsock-&lt;cid&gt;.sock</c>.</summary>
    /// <param name="guestCid">The guest's CID.</param>
    /// <returns>The path.</returns>
    public string UdsPath(ulong guestCid) =>
        Path.Join(Directory, string.Create(CultureInfo.InvariantCulture, $"vsock-{guestCid}.sock"));

    /// <summary>The VM served when no VM is given: guest CID 3 with the default sockets and settings.</summary>
    /// <returns>The default VM.</returns>
    public VmConfig DefaultVm() => new()
    {
        GuestCid = VmDefaults.GuestCid,
        SocketPath = SocketPath(VmDefaults.GuestCid),
        UdsPath = UdsPath(VmDefaults.GuestCid),
    };

    /// <summary>Creates <see cref="Directory"/> (mode 0700) if it does not exist yet.</summary>
    /// <exception cref="ConfigurationException">It cannot be created.</exception>
    public void EnsureDirectoryExists()
    {
        try
        {
            if (OperatingSystem.IsWindows())
            {
                System.IO.Directory.CreateDirectory(Directory);
            }
            else
            {
                System.IO.Directory.CreateDirectory(
                    Directory,
                    UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ConfigurationException(
                $"cannot create the socket directory '{ConfigText.Printable(Directory)}': {ConfigText.OneLine(ex.Message)}", ex);
        }
    }
}
