using System.Globalization;
using System.Text;

namespace VhostUserVsock.Configuration;

/// <summary>
/// Text helpers shared by the configuration readers: unsigned numbers as rust-vmm accepts them
/// (decimal, plus <c>0x</c> hexadecimal as a convenience) and one-line, printable renderings of
/// user input for error messages.
/// </summary>
public static class ConfigText
{
    /// <summary>Parses an unsigned number: decimal digits with an optional leading '+', or <c>0x</c> followed by hex digits.</summary>
    /// <param name="text">The text, surrounding white space allowed.</param>
    /// <param name="value">The number when parsing succeeds.</param>
    /// <param name="tooLarge">Whether the text is a well-formed number that does not fit 64 bits.</param>
    /// <returns><see langword="true"/> when <paramref name="text"/> is a number that fits 64 bits.</returns>
    public static bool TryParseUnsigned(string text, out ulong value, out bool tooLarge)
    {
        value = 0;
        tooLarge = false;
        ReadOnlySpan<char> s = text.AsSpan().Trim();
        bool hex = false;
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            hex = true;
            s = s[2..];
        }
        else if (s.StartsWith("+"))
        {
            s = s[1..];
        }

        if (s.IsEmpty)
        {
            return false;
        }

        foreach (char c in s)
        {
            if (hex ? !char.IsAsciiHexDigit(c) : !char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        if (ulong.TryParse(s, hex ? NumberStyles.AllowHexSpecifier : NumberStyles.None, CultureInfo.InvariantCulture, out value))
        {
            return true;
        }

        tooLarge = true;
        return false;
    }

    /// <summary>Renders user input for a one-line message: control characters become escapes, long text is shortened.</summary>
    /// <param name="text">The text to render.</param>
    /// <returns>The text, printable and on one line.</returns>
    public static string Printable(string text)
    {
        const int MaxLength = 200;
        var builder = new StringBuilder(Math.Min(text.Length, MaxLength) + 8);
        foreach (char c in text)
        {
            if (builder.Length >= MaxLength)
            {
                builder.Append("...");
                break;
            }

            _ = c switch
            {
                '\n' => builder.Append("\\n"),
                '\r' => builder.Append("\\r"),
                '\t' => builder.Append("\\t"),
                _ when char.IsControl(c) => builder.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}"),
                _ => builder.Append(c),
            };
        }

        return builder.ToString();
    }

    /// <summary>Joins the lines of a message into one line.</summary>
    /// <param name="message">A message that may span lines.</param>
    /// <returns>The message on one line.</returns>
    public static string OneLine(string message) =>
        string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
