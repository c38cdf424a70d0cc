namespace VsockLoad.Report;

/// <summary>
/// Counts violations by kind and keeps the first few descriptions for the error output. Callers format
/// the description only in the branch that found the violation, so the checked path allocates nothing.
/// </summary>
internal sealed class Checks
{
    /// <summary>Descriptions kept.</summary>
    public const int MaxMessages = 8;

    private readonly long[] _counts = new long[Enum.GetValues<Violation>().Length];
    private readonly List<string> _messages = [];

    /// <summary>Bytes compared with the pattern (both directions).</summary>
    public long CheckedBytes { get; set; }

    /// <summary>The total count.</summary>
    public long Total { get; private set; }

    /// <summary>The first descriptions.</summary>
    public IReadOnlyList<string> Messages => _messages;

    /// <summary>Records a violation.</summary>
    /// <param name="kind">The rule broken.</param>
    /// <param name="detail">A description.</param>
    public void Add(Violation kind, string detail)
    {
        _counts[(int)kind]++;
        Total++;
        if (_messages.Count < MaxMessages)
        {
            _messages.Add($"{kind}: {detail}");
        }
    }

    /// <summary>The count for one kind.</summary>
    /// <param name="kind">The kind.</param>
    /// <returns>The count.</returns>
    public long Count(Violation kind) => _counts[(int)kind];

    /// <summary>The non-zero counts as <c>kind:n,kind:n</c>, or <c>none</c>.</summary>
    /// <returns>The summary.</returns>
    public string Summary()
    {
        var parts = new List<string>();
        foreach (Violation kind in Enum.GetValues<Violation>())
        {
            if (_counts[(int)kind] != 0)
            {
                parts.Add($"{kind}:{_counts[(int)kind]}");
            }
        }

        return parts.Count == 0 ? "none" : string.Join(',', parts);
    }
}
