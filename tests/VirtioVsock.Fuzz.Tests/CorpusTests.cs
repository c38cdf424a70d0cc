using VirtioVsock.Fuzz.Engine;

namespace VirtioVsock.Fuzz.Tests;

/// <summary>The seed corpus on disk is what the generators make (so it cannot drift from the input formats).</summary>
public sealed class CorpusTests
{
    public static TheoryData<string> Targets => Corpus.TargetNames();

    [Theory]
    [MemberData(nameof(Targets))]
    public void CheckedInSeedsAreWhatTheGeneratorsMake(string name)
    {
        FuzzTarget target = FuzzTargets.Find(name)!;
        Dictionary<string, byte[]> onDisk = Corpus.Of(name)
            .Where(file => file.Name.StartsWith(CorpusFiles.SeedPrefix, StringComparison.Ordinal))
            .ToDictionary(file => file.Name, file => file.Data);
        IReadOnlyList<(string Name, byte[] Data)> generated = CorpusFiles.Seeds(target);
        const string Regenerate = "regenerate with: dotnet run --project fuzz/VirtioVsock.Fuzz -- corpus";
        Assert.True(generated.Count > 0, $"{name} has no seeds");
        Assert.True(
            onDisk.Keys.Order(StringComparer.Ordinal).SequenceEqual(generated.Select(seed => seed.Name).Order(StringComparer.Ordinal)),
            $"fuzz/corpus/{name} holds seeds [{string.Join(", ", onDisk.Keys)}], the generators make [{string.Join(", ", generated.Select(seed => seed.Name))}]; {Regenerate}");
        foreach ((string file, byte[] data) in generated)
        {
            Assert.True(onDisk[file].AsSpan().SequenceEqual(data), $"fuzz/corpus/{name}/{file} differs from its generator; {Regenerate}");
        }
    }
}
