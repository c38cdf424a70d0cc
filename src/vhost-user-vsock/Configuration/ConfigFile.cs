using System.Collections.Immutable;
using System.Text;

namespace VhostUserVsock.Configuration;

/// <summary>
/// Reads the YAML configuration file of rust-vmm's vhost-device-vsock (<c>--config FILE</c>):
/// <code>
/// vms:
///     - guest_cid: 3
///       socket: /tmp/vhost3.socket
///       uds_path: /tmp/vm3.vsock
///       tx_buffer_size: 65536
///       queue_size: 1024
///       groups: group1+groupA
/// </code>
/// Only the subset of YAML such files use is read, without a YAML library: one document with the
/// single top-level key <c>vms</c>, a block list of VMs, each a block mapping of scalar values
/// (plain, 'single-' or "double-quoted"), <c># comments</c>. Flow collections (<c>[…]</c>,
/// <c>{…}</c>), anchors, tags and multi-line scalars are refused with a message naming the line.
/// Keys take '_' or '-'; unlike rust-vmm (which ignores unknown keys) an unknown key is an error.
/// </summary>
public static class ConfigFile
{
    /// <summary>Reads and parses a configuration file.</summary>
    /// <param name="path">The file.</param>
    /// <returns>The VMs it lists, in order.</returns>
    /// <exception cref="ConfigurationException">The file cannot be read or is not a valid configuration.</exception>
    public static ImmutableArray<VmConfig> Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string text;
        try
        {
            text = File.ReadAllText(path, Encoding.UTF8);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            string why = ex switch
            {
                FileNotFoundException or DirectoryNotFoundException => "no such file",
                UnauthorizedAccessException when Directory.Exists(path) => "it is a directory",
                UnauthorizedAccessException => "permission denied",
                _ => ex.Message,
            };
            throw new ConfigurationException($"--config: cannot read '{ConfigText.Printable(path)}': {why}", ex);
        }

        return Parse(text, path);
    }

    /// <summary>Parses the text of a configuration file.</summary>
    /// <param name="text">The YAML text.</param>
    /// <param name="name">The file's name, for messages.</param>
    /// <returns>The VMs it lists, in order.</returns>
    /// <exception cref="ConfigurationException">The text is not a valid configuration.</exception>
    public static ImmutableArray<VmConfig> Parse(string text, string name)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(name);
        string where = $"config file '{ConfigText.Printable(name)}'";
        List<YamlLine> lines = ReadLines(text, where);
        int i = 0;
        if (i < lines.Count && lines[i] is { Indent: 0, Content: "---" })
        {
            i++;
        }

        if (i >= lines.Count)
        {
            throw new ConfigurationException($"{where}: no 'vms:' list of VMs");
        }

        YamlLine top = lines[i];
        (string topKey, string topValue) = SplitEntry(top, where);
        if (top.Indent != 0 || topKey != "vms")
        {
            throw new ConfigurationException(
                $"{where} line {top.Number}: unknown top-level key '{ConfigText.Printable(topKey)}' (the file holds one key, vms: a list of VMs)");
        }

        if (topValue.Length != 0)
        {
            throw new ConfigurationException(
                $"{where} line {top.Number}: vms must be a block list of VMs, one '- ' entry per VM");
        }

        i++;
        if (i >= lines.Count || !IsItem(lines[i]))
        {
            throw new ConfigurationException($"{where} line {top.Number}: no VMs listed under vms:");
        }

        int listIndent = lines[i].Indent;
        ImmutableArray<VmConfig>.Builder vms = ImmutableArray.CreateBuilder<VmConfig>();
        while (i < lines.Count)
        {
            YamlLine itemLine = lines[i];
            if (itemLine.Indent == listIndent && IsItem(itemLine))
            {
                i = ReadVm(lines, i, listIndent, where, vms);
                continue;
            }

            if (itemLine.Indent == 0 && itemLine.Content == "...")
            {
                break;
            }

            if (itemLine.Indent == 0 && itemLine.Content == "---")
            {
                throw new ConfigurationException($"{where} line {itemLine.Number}: only one YAML document is read");
            }

            if (itemLine.Indent == 0 && !IsItem(itemLine))
            {
                (string key, _) = SplitEntry(itemLine, where);
                throw new ConfigurationException(key == "vms"
                    ? $"{where} line {itemLine.Number}: vms is given twice"
                    : $"{where} line {itemLine.Number}: unknown top-level key '{ConfigText.Printable(key)}' (the file holds one key, vms: a list of VMs)");
            }

            throw new ConfigurationException(
                $"{where} line {itemLine.Number}: unexpected indentation; each VM starts with '- ' at the indentation of the first one");
        }

        return vms.ToImmutable();
    }

    private static int ReadVm(List<YamlLine> lines, int i, int listIndent, string where, ImmutableArray<VmConfig>.Builder vms)
    {
        YamlLine itemLine = lines[i];
        string afterDash = itemLine.Content[1..];
        string firstEntry = afterDash.TrimStart(' ');
        var builder = new VmConfigBuilder(VmSettingStyle.ConfigFile);
        string vmOrigin = $"{where} line {itemLine.Number} (VM {vms.Count + 1})";
        int keyIndent;
        i++;
        if (firstEntry.Length != 0)
        {
            keyIndent = itemLine.Indent + 1 + (afterDash.Length - firstEntry.Length);
            SetEntry(builder, itemLine with { Indent = keyIndent, Content = firstEntry }, where);
        }
        else
        {
            if (i >= lines.Count || lines[i].Indent <= listIndent)
            {
                throw new ConfigurationException($"{vmOrigin}: empty VM entry");
            }

            keyIndent = lines[i].Indent;
        }

        while (i < lines.Count && lines[i].Indent > listIndent)
        {
            YamlLine line = lines[i];
            if (line.Indent != keyIndent)
            {
                throw new ConfigurationException(line.Indent > keyIndent
                    ? $"{where} line {line.Number}: nested values and multi-line scalars are not supported; each VM setting is 'key: value' on one line"
                    : $"{where} line {line.Number}: unexpected indentation; the settings of a VM line up under its first one");
            }

            SetEntry(builder, line, where);
            i++;
        }

        vms.Add(builder.Build(vmOrigin));
        return i;
    }

    private static void SetEntry(VmConfigBuilder builder, YamlLine line, string where)
    {
        string origin = $"{where} line {line.Number}";
        if (IsItem(line))
        {
            throw new ConfigurationException($"{origin}: nested lists are not supported; a VM is a mapping of 'key: value' lines");
        }

        if (line.Content[0] is '{' or '[')
        {
            throw new ConfigurationException(
                $"{origin}: '{ConfigText.Printable(line.Content)}' is a flow collection, which this reader does not support; write one 'key: value' per line");
        }

        (string key, string rawValue) = SplitEntry(line, where);
        if (rawValue.Length == 0)
        {
            throw new ConfigurationException($"{origin}: {ConfigText.Printable(key)} has no value");
        }

        builder.Set(key, ParseScalar(rawValue, origin), origin);
    }

    private static (string Key, string Value) SplitEntry(YamlLine line, string where)
    {
        string content = line.Content;
        int colon = -1;
        for (int c = 0; c < content.Length; c++)
        {
            if (content[c] == ':' && (c + 1 == content.Length || content[c + 1] is ' ' or '\t'))
            {
                colon = c;
                break;
            }
        }

        if (colon <= 0)
        {
            throw new ConfigurationException(
                $"{where} line {line.Number}: expected 'key: value', found '{ConfigText.Printable(content)}'");
        }

        string key = content[..colon].Trim();
        if (key.Length > 1 && key[0] is '"' or '\'' && key[^1] == key[0])
        {
            key = key[1..^1];
        }

        return (key, content[(colon + 1)..].Trim());
    }

    private static string ParseScalar(string raw, string origin)
    {
        char first = raw[0];
        if (first is '"' or '\'')
        {
            return ParseQuoted(raw, origin);
        }

        if (first is '[' or '{' or '&' or '*' or '!' or '|' or '>' or '%' or '@' or '`')
        {
            throw new ConfigurationException(
                $"{origin}: '{ConfigText.Printable(raw)}' uses YAML this reader does not support (flow collections, anchors, tags, block scalars); write a plain or quoted value");
        }

        return raw;
    }

    private static string ParseQuoted(string raw, string origin)
    {
        char quote = raw[0];
        var value = new StringBuilder(raw.Length);
        int c = 1;
        while (true)
        {
            if (c >= raw.Length)
            {
                throw new ConfigurationException($"{origin}: unterminated {(quote == '"' ? "double" : "single")}-quoted value");
            }

            char ch = raw[c];
            if (quote == '\'' && ch == '\'')
            {
                if (c + 1 < raw.Length && raw[c + 1] == '\'')
                {
                    value.Append('\'');
                    c += 2;
                    continue;
                }

                break;
            }

            if (quote == '"' && ch == '"')
            {
                break;
            }

            if (quote == '"' && ch == '\\')
            {
                if (c + 1 >= raw.Length)
                {
                    throw new ConfigurationException($"{origin}: unterminated double-quoted value");
                }

                value.Append(raw[c + 1] switch
                {
                    '\\' => '\\',
                    '"' => '"',
                    '/' => '/',
                    'n' => '\n',
                    't' => '\t',
                    ' ' => ' ',
                    _ => throw new ConfigurationException(
                        $"{origin}: unsupported escape '\\{ConfigText.Printable(raw[c + 1].ToString())}' in a double-quoted value"),
                });
                c += 2;
                continue;
            }

            value.Append(ch);
            c++;
        }

        if (raw[(c + 1)..].Trim().Length != 0)
        {
            throw new ConfigurationException($"{origin}: unexpected text after the closing quote in '{ConfigText.Printable(raw)}'");
        }

        return value.ToString();
    }

    private static bool IsItem(YamlLine line) => line.Content == "-" || line.Content.StartsWith("- ", StringComparison.Ordinal);

    private static List<YamlLine> ReadLines(string text, string where)
    {
        var lines = new List<YamlLine>();
        string[] raw = text.TrimStart('\uFEFF').Split('\n');
        for (int n = 0; n < raw.Length; n++)
        {
            string line = raw[n].TrimEnd('\r');
            int indent = 0;
            while (indent < line.Length && line[indent] is ' ' or '\t')
            {
                if (line[indent] == '\t' && StripComment(line[indent..]).Trim().Length != 0)
                {
                    throw new ConfigurationException($"{where} line {n + 1}: a tab in the indentation (YAML indents with spaces)");
                }

                indent++;
            }

            string content = StripComment(line[indent..]).TrimEnd(' ', '\t');
            if (content.Length != 0)
            {
                lines.Add(new YamlLine(n + 1, indent, content));
            }
        }

        return lines;
    }

    private static string StripComment(string content)
    {
        char quote = '\0';
        for (int c = 0; c < content.Length; c++)
        {
            char ch = content[c];
            if (quote != '\0')
            {
                if (ch == '\\' && quote == '"')
                {
                    c++;
                }
                else if (ch == quote)
                {
                    quote = '\0';
                }
            }
            else if (ch == '#' && (c == 0 || content[c - 1] is ' ' or '\t'))
            {
                return content[..c];
            }
            else if (ch is '"' or '\'' && (c == 0 || content[c - 1] is ' ' or '\t' or ':' or '-'))
            {
                quote = ch;
            }
        }

        return content;
    }
}
