using System.Collections.Immutable;

namespace VhostUserVsock.Configuration;

/// <summary>
/// A node of a parsed configuration file, as <see cref="ConfigYamlReader"/> builds it from YamlDotNet's events:
/// a scalar, a sequence or a mapping, each with the line and column where it starts so that every message can
/// point at it. Owns values only; must never interpret them (that is <see cref="ConfigFile"/>'s job).
/// </summary>
/// <param name="Line">The 1-based line where the node starts.</param>
/// <param name="Column">The 1-based column where the node starts.</param>
internal abstract record ConfigNode(int Line, int Column)
{
    /// <summary>What the node is, for messages: <c>a list</c>, <c>a mapping</c> or <c>a value</c>.</summary>
    public abstract string Kind { get; }
}

/// <summary>A scalar: its text, and whether it is YAML's null (empty, <c>~</c> or <c>null</c> unquoted).</summary>
/// <param name="Value">The text after YAML's quoting and folding rules.</param>
/// <param name="IsNull">Whether the scalar is unquoted and empty, <c>~</c> or <c>null</c>.</param>
/// <param name="Line">The 1-based line.</param>
/// <param name="Column">The 1-based column.</param>
internal sealed record ConfigScalar(string Value, bool IsNull, int Line, int Column) : ConfigNode(Line, Column)
{
    /// <inheritdoc/>
    public override string Kind => "a value";
}

/// <summary>A sequence (block <c>- item</c> lines or flow <c>[a, b]</c>).</summary>
/// <param name="Items">The items in order.</param>
/// <param name="Line">The 1-based line.</param>
/// <param name="Column">The 1-based column.</param>
internal sealed record ConfigSequence(ImmutableArray<ConfigNode> Items, int Line, int Column) : ConfigNode(Line, Column)
{
    /// <inheritdoc/>
    public override string Kind => "a list";
}

/// <summary>A mapping (block <c>key: value</c> lines or flow <c>{key: value}</c>), entries in file order, duplicates kept.</summary>
/// <param name="Entries">The entries in order, as written (a key given twice appears twice).</param>
/// <param name="Line">The 1-based line.</param>
/// <param name="Column">The 1-based column.</param>
internal sealed record ConfigMapping(ImmutableArray<KeyValuePair<ConfigScalar, ConfigNode>> Entries, int Line, int Column) : ConfigNode(Line, Column)
{
    /// <inheritdoc/>
    public override string Kind => "a mapping";
}
