namespace VhostUserVsock.Tests.Cli;

/// <summary>A fresh directory under /tmp (short, so socket paths stay under the 107-byte limit), deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory() => Path = Directory.CreateTempSubdirectory("vuvcli-").FullName;

    public string Path { get; }

    public string File(string name) => System.IO.Path.Join(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
