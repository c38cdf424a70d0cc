using System.Reflection;

namespace VirtioVsock.Tests.Common;

/// <summary>
/// The one check that README.md shows a test's example code verbatim: the lines between
/// <c>// README:NAME-begin</c> and <c>// README:NAME-end</c> in a test source file, less the 8-space indent of
/// a method body, must appear in README.md. Linked (as source) into every test project with README
/// examples. It only reads those two files; it must never run, compile or rewrite the examples.
/// </summary>
internal static class ReadmeSnippet
{
    private const string Indent = "        ";

    /// <summary>Asserts that README.md contains the example <paramref name="name"/> of <paramref name="testFile"/>.</summary>
    /// <param name="testFile">The test source, relative to the repository root (e.g. <c>tests/X/ReadmeExamplesTests.cs</c>).</param>
    /// <param name="name">The example's marker name.</param>
    public static void AssertShownInReadme(string testFile, string name)
    {
        string source = File.ReadAllText(Path.Combine(RepositoryRoot(), testFile)).Replace("\r\n", "\n", StringComparison.Ordinal);
        string begin = $"// README:{name}-begin\n";
        int start = source.IndexOf(begin, StringComparison.Ordinal);
        int end = source.IndexOf($"{Indent}// README:{name}-end", StringComparison.Ordinal);
        Assert.True(start >= 0 && end > start, $"no README:{name} markers in {testFile}");
        string snippet = string.Join(
            '\n',
            source[(start + begin.Length)..end].TrimEnd().Split('\n').Select(l => l.Length >= Indent.Length ? l[Indent.Length..] : l.TrimStart()));

        string readme = File.ReadAllText(Path.Combine(RepositoryRoot(), "README.md")).Replace("\r\n", "\n", StringComparison.Ordinal);
        Assert.Contains(snippet, readme);
    }

    /// <summary>The repository root, recorded at build time by tests/Directory.Build.props.</summary>
    /// <remarks>Not the compiler's source path: CI builds map it to <c>/_/</c> (deterministic builds).</remarks>
    private static string RepositoryRoot() =>
        typeof(ReadmeSnippet).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "RepositoryRoot").Value!;
}
