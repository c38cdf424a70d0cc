using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace VhostUserVsock.Metrics;

/// <summary>
/// The Prometheus text exposition format (0.0.4) for <see cref="System.Diagnostics.Metrics"/> instruments:
/// names with every character outside <c>[a-zA-Z0-9_:]</c> replaced by <c>_</c> (<c>vsock.bytes</c> becomes
/// <c>vsock_bytes</c>), monotonic counters suffixed <c>_total</c>, tags as labels (sorted, values escaped).
/// Formatting only; owns nothing.
/// </summary>
public static class PrometheusText
{
    /// <summary>The content type of the format.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>Whether an instrument is a monotonic counter (exported as <c>counter</c>, name suffixed <c>_total</c>).</summary>
    /// <param name="instrument">The instrument.</param>
    /// <returns><see langword="true"/> for <c>Counter</c> and <c>ObservableCounter</c>.</returns>
    public static bool IsCounter(Instrument instrument)
    {
        ArgumentNullException.ThrowIfNull(instrument);
        Type type = instrument.GetType();
        return type.IsGenericType && (type.GetGenericTypeDefinition() == typeof(Counter<>) || type.GetGenericTypeDefinition() == typeof(ObservableCounter<>));
    }

    /// <summary>The metric name of an instrument.</summary>
    /// <param name="instrument">The instrument.</param>
    /// <returns>The sanitised name, with <c>_total</c> for counters.</returns>
    public static string Name(Instrument instrument)
    {
        ArgumentNullException.ThrowIfNull(instrument);
        string name = Sanitise(instrument.Name);
        return IsCounter(instrument) && !name.EndsWith("_total", StringComparison.Ordinal) ? name + "_total" : name;
    }

    /// <summary>Renders tags as a label set: <c>{a="1",b="x"}</c>, or empty without tags.</summary>
    /// <param name="tags">The measurement's tags.</param>
    /// <returns>The label set.</returns>
    public static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.IsEmpty)
        {
            return string.Empty;
        }

        var pairs = new List<(string Key, string Value)>(tags.Length);
        foreach (KeyValuePair<string, object?> tag in tags)
        {
            pairs.Add((Sanitise(tag.Key), Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? string.Empty));
        }

        pairs.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        var text = new StringBuilder("{");
        for (int i = 0; i < pairs.Count; i++)
        {
            text.Append(i == 0 ? string.Empty : ",").Append(pairs[i].Key).Append("=\"");
            foreach (char c in pairs[i].Value)
            {
                text.Append(c switch { '\\' => "\\\\", '"' => "\\\"", '\n' => "\\n", _ => c.ToString() });
            }

            text.Append('"');
        }

        return text.Append('}').ToString();
    }

    /// <summary>Appends one metric family: <c># HELP</c>, <c># TYPE</c> and one sample per label set.</summary>
    /// <param name="text">Where to append.</param>
    /// <param name="instrument">The instrument.</param>
    /// <param name="samples">Its values by label set.</param>
    public static void AppendFamily(StringBuilder text, Instrument instrument, IReadOnlyDictionary<string, double> samples)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(instrument);
        ArgumentNullException.ThrowIfNull(samples);
        string name = Name(instrument);
        string help = (instrument.Description ?? instrument.Name) + (string.IsNullOrEmpty(instrument.Unit) ? string.Empty : $" ({instrument.Unit})");
        text.Append("# HELP ").Append(name).Append(' ').Append(help.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)).Append('\n');
        text.Append("# TYPE ").Append(name).Append(IsCounter(instrument) ? " counter\n" : " gauge\n");
        foreach ((string labels, double value) in samples.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            text.Append(name).Append(labels).Append(' ').Append(Number(value)).Append('\n');
        }
    }

    private static string Number(double value) => value switch
    {
        double.PositiveInfinity => "+Inf",
        double.NegativeInfinity => "-Inf",
        double.NaN => "NaN",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };

    private static string Sanitise(string name)
    {
        var text = new StringBuilder(name.Length);
        foreach (char c in name)
        {
            text.Append(char.IsAsciiLetterOrDigit(c) || c is '_' or ':' ? c : '_');
        }

        if (text.Length == 0 || char.IsAsciiDigit(text[0]))
        {
            text.Insert(0, '_');
        }

        return text.ToString();
    }
}
