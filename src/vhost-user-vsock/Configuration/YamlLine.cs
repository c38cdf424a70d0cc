namespace VhostUserVsock.Configuration;

/// <summary>A significant line of a configuration file: its number, indentation and text without comment.</summary>
/// <param name="Number">The 1-based line number.</param>
/// <param name="Indent">The number of leading spaces.</param>
/// <param name="Content">The text after the indentation, comment and trailing space removed.</param>
internal readonly record struct YamlLine(int Number, int Indent, string Content);
