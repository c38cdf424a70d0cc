using System.Text.RegularExpressions;
using Virtio.Vsock.Backends.Unix;
using VirtioVsock.Fuzz.Engine;

namespace VirtioVsock.Fuzz.Targets;

/// <summary>
/// <c>connect-line</c>: the host's <c>CONNECT &lt;port&gt;\n</c> handshake parser fed in chunks the input
/// chooses, as a hostile host peer would send it.
/// </summary>
/// <remarks>
/// <para>Input: <c>u8 n</c>, then <c>n % 16</c> chunk lengths (one byte each, 0 allowed), then the stream
/// bytes; the stream is fed in those chunk sizes, cycling, and the parser is told end of stream at the end.</para>
/// <para>Invariants: a result never consumes more than the chunk it got, nor anything after <c>\n</c>;
/// the line never exceeds <see cref="ConnectCommandParser.MaxLineLength"/>; <c>NeedMore</c> consumes the
/// whole chunk; a finished parser consumes nothing; the outcome (status, port, error, bytes of the line) is
/// the same whatever the chunking (compared with whole-buffer and byte-by-byte feeding); a complete line
/// matches the documented grammar and its port is the line's decimal number.</para>
/// </remarks>
public static partial class ConnectLineTarget
{
    /// <summary>The <c>connect-line</c> target.</summary>
    /// <param name="input">The input.</param>
    public static void Run(ReadOnlySpan<byte> input)
    {
        var reader = new FuzzReader(input);
        int chunkCount = reader.U8() % 16;
        Span<int> chunks = stackalloc int[Math.Max(chunkCount, 1)];
        chunks[0] = int.MaxValue;
        for (int i = 0; i < chunkCount; i++)
        {
            chunks[i] = reader.U8();
        }

        if (AllZero(chunks))
        {
            chunks[0] = int.MaxValue;
        }

        ReadOnlySpan<byte> stream = reader.Rest();
        Outcome chunked = Feed(stream, chunks);
        Outcome whole = Feed(stream, [int.MaxValue]);
        Outcome bytewise = Feed(stream, [1]);
        FuzzInvariantException.Check(chunked == whole, $"chunked feeding gave {chunked}, whole-buffer feeding {whole}");
        FuzzInvariantException.Check(bytewise == whole, $"byte-by-byte feeding gave {bytewise}, whole-buffer feeding {whole}");

        ReadOnlySpan<byte> line = stream[..whole.LineLength];
        bool grammar = LineGrammar().IsMatch(System.Text.Encoding.Latin1.GetString(line));
        if (whole.Status == ConnectParseStatus.Complete)
        {
            FuzzInvariantException.Check(grammar, $"accepted a line outside the grammar: {Show(line)}");
            string digits = DigitsOf(line);
            FuzzInvariantException.Check(ulong.Parse(digits, System.Globalization.CultureInfo.InvariantCulture) == whole.Port, $"port {whole.Port} differs from the line's {digits}");
        }
        else
        {
            FuzzInvariantException.Check(!grammar || DigitsOverflow(line), $"refused a line the grammar accepts: {Show(line)} ({whole})");
            FuzzInvariantException.Check(whole.Error != ConnectCommandError.None, $"invalid without a reason: {whole}");
            FuzzInvariantException.Check(whole.Port == 0, $"a refused line reports port {whole.Port}");
        }
    }

    [GeneratedRegex(@"\A[cC][oO][nN][nN][eE][cC][tT][ \t]+[0-9]+[ \t]*\r?\n\z")]
    private static partial Regex LineGrammar();

    private static Outcome Feed(ReadOnlySpan<byte> stream, ReadOnlySpan<int> chunks)
    {
        var parser = default(ConnectCommandParser);
        int position = 0;
        int lineLength = 0;
        ConnectParseResult last = default;
        bool finished = false;
        for (int i = 0; position < stream.Length; i++)
        {
            int size = Math.Min(chunks[i % chunks.Length], stream.Length - position);
            ReadOnlySpan<byte> chunk = stream.Slice(position, size);
            ConnectParseResult result = parser.Feed(chunk);
            FuzzInvariantException.Check(result.BytesConsumed >= 0 && result.BytesConsumed <= chunk.Length, $"consumed {result.BytesConsumed} of a {chunk.Length}-byte chunk");
            if (finished)
            {
                FuzzInvariantException.Check(result.BytesConsumed == 0 && result.Status == last.Status && result.Port == last.Port && result.Error == last.Error, $"a finished parser changed: {last} then {result}");
            }
            else
            {
                FuzzInvariantException.Check(!chunk[..Math.Max(result.BytesConsumed - 1, 0)].Contains((byte)'\n'), $"consumed past a \\n: {result} of {Show(chunk)}");
                switch (result.Status)
                {
                    case ConnectParseStatus.NeedMore:
                        FuzzInvariantException.Check(result.BytesConsumed == chunk.Length && !chunk.Contains((byte)'\n'), $"NeedMore did not consume the whole chunk {Show(chunk)} ({result})");
                        break;
                    case ConnectParseStatus.Complete:
                        FuzzInvariantException.Check(result.BytesConsumed > 0 && chunk[result.BytesConsumed - 1] == (byte)'\n', $"complete without ending at \\n: {result} of {Show(chunk)}");
                        break;
                    default:
                        FuzzInvariantException.Check(result.Error != ConnectCommandError.None, $"invalid without a reason: {result}");
                        break;
                }

                lineLength += result.BytesConsumed;
                finished = result.Status != ConnectParseStatus.NeedMore;
            }

            FuzzInvariantException.Check(lineLength <= ConnectCommandParser.MaxLineLength && parser.BytesConsumed == lineLength, $"line length {lineLength}, parser says {parser.BytesConsumed}");
            last = result;
            position += size;
        }

        ConnectParseResult end = parser.EndOfStream();
        FuzzInvariantException.Check(end.BytesConsumed == 0, "EndOfStream consumed bytes");
        if (!finished)
        {
            FuzzInvariantException.Check(end.Status == ConnectParseStatus.Invalid && end.Error == ConnectCommandError.EndOfStream, $"an unfinished line at end of stream gave {end}");
        }
        else
        {
            FuzzInvariantException.Check(end.Status == last.Status && end.Port == last.Port && end.Error == last.Error, $"EndOfStream changed a finished result {last} into {end}");
        }

        return new Outcome(end.Status, end.Port, end.Error, lineLength);
    }

    private static bool AllZero(ReadOnlySpan<int> chunks)
    {
        foreach (int chunk in chunks)
        {
            if (chunk != 0)
            {
                return false;
            }
        }

        return true;
    }

    private static string DigitsOf(ReadOnlySpan<byte> line)
    {
        var digits = new System.Text.StringBuilder();
        foreach (byte b in line[7..])
        {
            if (b is >= (byte)'0' and <= (byte)'9')
            {
                digits.Append((char)b);
            }
        }

        return digits.ToString();
    }

    private static bool DigitsOverflow(ReadOnlySpan<byte> line) =>
        !ulong.TryParse(DigitsOf(line), System.Globalization.CultureInfo.InvariantCulture, out ulong value) || value > uint.MaxValue;

    private static string Show(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes);

    private readonly record struct Outcome(ConnectParseStatus Status, uint Port, ConnectCommandError Error, int LineLength);
}
