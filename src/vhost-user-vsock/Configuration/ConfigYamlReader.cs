using System.Collections.Immutable;
using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace VhostUserVsock.Configuration;

/// <summary>
/// Turns the text of a configuration file into <see cref="ConfigNode"/>s with YamlDotNet's parser (its event
/// stream: no reflection, so trimming and NativeAOT stay clean). Full YAML 1.1 syntax is read: block and flow
/// collections, quoting styles, block scalars, comments, anchors and aliases. One document at most.
/// </summary>
/// <remarks>
/// <b>Owns:</b> the YAML syntax and its error messages (<c>line L column C: …</c>, from YamlDotNet's marks, or our
/// own for a tab in the indentation). <b>Must never:</b> interpret keys or values, drop a duplicate key (the
/// caller reports it), or expand aliases (an alias is the anchored node itself, so nothing grows with them).
/// </remarks>
internal static class ConfigYamlReader
{
    /// <summary>How deep collections may nest; the configuration needs three levels.</summary>
    private const int MaxDepth = 32;

    /// <summary>Parses the text.</summary>
    /// <param name="text">The YAML text.</param>
    /// <param name="where">The file, for messages (e.g. <c>config file 'vms.yaml'</c>).</param>
    /// <returns>The root node of the document, or <see langword="null"/> when the text holds none (empty or only comments).</returns>
    /// <exception cref="ConfigurationException">The text is not valid YAML or holds more than one document.</exception>
    public static ConfigNode? Read(string text, string where)
    {
        var parser = new Parser(new StringReader(text));
        var anchors = new Dictionary<string, ConfigNode>(StringComparer.Ordinal);
        try
        {
            parser.Consume<StreamStart>();
            if (parser.TryConsume<StreamEnd>(out _))
            {
                return null;
            }

            parser.Consume<DocumentStart>();
            ConfigNode root = ReadNode(parser, anchors, where, 0);
            parser.Consume<DocumentEnd>();
            if (parser.Accept<DocumentStart>(out var second))
            {
                throw new ConfigurationException($"{where} line {second.Start.Line}: only one YAML document is read");
            }

            parser.Consume<StreamEnd>();
            return root is ConfigScalar { IsNull: true } ? null : root;
        }
        catch (YamlException ex)
        {
            throw new ConfigurationException(Describe(ex, text, where), ex);
        }
    }

    private static ConfigNode ReadNode(IParser parser, Dictionary<string, ConfigNode> anchors, string where, int depth)
    {
        if (depth > MaxDepth)
        {
            ParsingEvent deep = parser.Current!;
            throw new ConfigurationException(string.Create(
                CultureInfo.InvariantCulture, $"{where} line {deep.Start.Line}: collections nested more than {MaxDepth} deep"));
        }

        if (parser.TryConsume<AnchorAlias>(out var alias))
        {
            return anchors.TryGetValue(alias.Value.Value, out ConfigNode? target)
                ? target
                : throw new ConfigurationException(
                    $"{where} line {alias.Start.Line}: alias '*{ConfigText.Printable(alias.Value.Value)}' names no anchor defined before it");
        }

        ConfigNode node;
        AnchorName anchor;
        if (parser.TryConsume<Scalar>(out var scalar))
        {
            anchor = scalar.Anchor;
            bool isNull = scalar.Style == ScalarStyle.Plain && scalar.Value is "" or "~" or "null" or "Null" or "NULL";
            node = new ConfigScalar(scalar.Value, isNull, (int)scalar.Start.Line, (int)scalar.Start.Column);
        }
        else if (parser.TryConsume<SequenceStart>(out var sequenceStart))
        {
            anchor = sequenceStart.Anchor;
            ImmutableArray<ConfigNode>.Builder items = ImmutableArray.CreateBuilder<ConfigNode>();
            while (!parser.TryConsume<SequenceEnd>(out _))
            {
                items.Add(ReadNode(parser, anchors, where, depth + 1));
            }

            node = new ConfigSequence(items.ToImmutable(), (int)sequenceStart.Start.Line, (int)sequenceStart.Start.Column);
        }
        else
        {
            MappingStart mappingStart = parser.Consume<MappingStart>();
            anchor = mappingStart.Anchor;
            ImmutableArray<KeyValuePair<ConfigScalar, ConfigNode>>.Builder entries = ImmutableArray.CreateBuilder<KeyValuePair<ConfigScalar, ConfigNode>>();
            while (!parser.TryConsume<MappingEnd>(out _))
            {
                ConfigNode key = ReadNode(parser, anchors, where, depth + 1);
                if (key is not ConfigScalar keyScalar)
                {
                    throw new ConfigurationException($"{where} line {key.Line}: a key must be a plain name, not {key.Kind}");
                }

                entries.Add(new(keyScalar, ReadNode(parser, anchors, where, depth + 1)));
            }

            node = new ConfigMapping(entries.ToImmutable(), (int)mappingStart.Start.Line, (int)mappingStart.Start.Column);
        }

        if (!anchor.IsEmpty)
        {
            anchors[anchor.Value] = node;
        }

        return node;
    }

    /// <summary>One line for a syntax error: ours for a tab in the indentation (YamlDotNet points at the value
    /// before it), YamlDotNet's otherwise, with its line and column.</summary>
    private static string Describe(YamlException ex, string text, string where)
    {
        string[] lines = text.Split('\n');
        long last = Math.Min(lines.Length, ex.Start.Line + 1);
        for (int n = 0; n < last; n++)
        {
            string line = lines[n].TrimEnd('\r');
            int content = 0;
            while (content < line.Length && line[content] is ' ' or '\t')
            {
                content++;
            }

            if (content < line.Length && line[content] != '#' && line.AsSpan(0, content).Contains('\t'))
            {
                return string.Create(CultureInfo.InvariantCulture, $"{where} line {n + 1}: a tab in the indentation (YAML indents with spaces)");
            }
        }

        string message = ConfigText.Printable(ConfigText.OneLine(ex.Message)).TrimEnd('.');
        return string.Create(CultureInfo.InvariantCulture, $"{where} line {ex.Start.Line} column {ex.Start.Column}: not valid YAML: {message}");
    }
}
