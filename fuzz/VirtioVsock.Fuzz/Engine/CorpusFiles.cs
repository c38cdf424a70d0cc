namespace VirtioVsock.Fuzz.Engine;

/// <summary>The corpus on disk: <c>fuzz/corpus/&lt;target&gt;/*</c>, seeds written as <c>seed-&lt;name&gt;</c>.</summary>
public static class CorpusFiles
{
    /// <summary>The prefix of generated seed files (other files, such as crash reproducers, are kept as they are).</summary>
    public const string SeedPrefix = "seed-";

    /// <summary>Reads every file of a target's corpus folder, sorted by name.</summary>
    /// <param name="directory">The folder (missing: empty).</param>
    /// <returns>The inputs.</returns>
    public static IReadOnlyList<(string Name, byte[] Data)> Read(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return [];
        }

        return [.. Directory.GetFiles(directory).Order(StringComparer.Ordinal).Select(path => (Path.GetFileName(path), File.ReadAllBytes(path)))];
    }

    /// <summary>The generated seeds of a target, with their file names.</summary>
    /// <param name="target">The target.</param>
    /// <returns>File name and bytes.</returns>
    public static IReadOnlyList<(string Name, byte[] Data)> Seeds(FuzzTarget target)
    {
        ArgumentNullException.ThrowIfNull(target);
        return [.. target.Seeds().Select(seed => (SeedPrefix + seed.Name, seed.Data))];
    }

    /// <summary>Writes every target's seeds under <paramref name="root"/>, replacing old <c>seed-*</c> files.</summary>
    /// <param name="root">The corpus root (<c>fuzz/corpus</c>).</param>
    /// <returns>The number of files written.</returns>
    public static int WriteSeeds(string root)
    {
        int written = 0;
        foreach (FuzzTarget target in FuzzTargets.All)
        {
            string directory = Path.Combine(root, target.Name);
            Directory.CreateDirectory(directory);
            foreach (string old in Directory.GetFiles(directory, SeedPrefix + "*"))
            {
                File.Delete(old);
            }

            foreach ((string name, byte[] data) in Seeds(target))
            {
                File.WriteAllBytes(Path.Combine(directory, name), data);
                written++;
            }
        }

        return written;
    }
}
