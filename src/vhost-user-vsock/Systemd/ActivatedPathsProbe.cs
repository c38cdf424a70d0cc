using VhostUserVsock.Configuration;

namespace VhostUserVsock.Systemd;

/// <summary>
/// A file-system probe that shows the socket paths systemd passed (<see cref="SocketActivation"/>) as missing, so
/// the daemon neither refuses them as "in use" (systemd listens on them) nor removes their files at start or stop.
/// Delegates everything else; must never connect to an activated socket (that would eat a frontend's slot).
/// </summary>
/// <param name="inner">The real probe.</param>
/// <param name="activation">The passed sockets.</param>
public sealed class ActivatedPathsProbe(IFileSystemProbe inner, SocketActivation activation) : IFileSystemProbe
{
    private readonly HashSet<string> _activated = [.. activation.Paths];

    /// <inheritdoc/>
    public PathKind GetKind(string path) => IsActivated(path) ? PathKind.Missing : inner.GetKind(path);

    /// <inheritdoc/>
    public bool IsWritableDirectory(string path) => inner.IsWritableDirectory(path);

    /// <inheritdoc/>
    public bool IsListening(string path) => !IsActivated(path) && inner.IsListening(path);

    private bool IsActivated(string path) => _activated.Contains(Path.GetFullPath(path));
}
