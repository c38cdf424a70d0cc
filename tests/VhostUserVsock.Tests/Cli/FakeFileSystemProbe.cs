using VhostUserVsock.Configuration;

namespace VhostUserVsock.Tests.Cli;

/// <summary>Answers file-system questions from the real system, except for the directories it is told are read-only.</summary>
internal sealed class FakeFileSystemProbe : IFileSystemProbe
{
    public HashSet<string> ReadOnlyDirectories { get; } = new(StringComparer.Ordinal);

    public PathKind GetKind(string path) => UnixFileSystemProbe.Instance.GetKind(path);

    public bool IsWritableDirectory(string path) =>
        !ReadOnlyDirectories.Contains(path) && UnixFileSystemProbe.Instance.IsWritableDirectory(path);

    public bool IsListening(string path) => UnixFileSystemProbe.Instance.IsListening(path);
}
