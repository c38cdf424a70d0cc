using VirtioVsock.Fuzz.Engine;

namespace VirtioVsock.Fuzz.Tests;

/// <summary>The checked-in corpus as copied next to the test assembly.</summary>
internal static class Corpus
{
    public static string Root => Path.Combine(AppContext.BaseDirectory, "corpus");

    public static IReadOnlyList<(string Name, byte[] Data)> Of(string target) => CorpusFiles.Read(Path.Combine(Root, target));

    public static TheoryData<string> TargetNames()
    {
        var data = new TheoryData<string>();
        foreach (FuzzTarget target in FuzzTargets.All)
        {
            data.Add(target.Name);
        }

        return data;
    }
}
