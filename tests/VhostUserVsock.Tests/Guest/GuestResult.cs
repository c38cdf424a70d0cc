using System.Globalization;

namespace VhostUserVsock.Tests.Guest;

/// <summary>
/// A <c>RESULT &lt;name&gt; &lt;exit-code&gt; &lt;details&gt;</c> line from the guest's serial console.
/// For vsocktest, <see cref="Details"/> is its summary line, e.g.
/// <c>OK echo-client peer=2:5000 bytes=1048576 crc32=1a2b3c4d ms=120 mibps=8.33</c> or
/// <c>FAIL send ... reason=connect-error errno=ECONNRESET</c>.
/// Exit codes: 0 ok, 1 check failed, 2 usage, 3 timeout, 4 no vsock transport, 137 killed by the
/// guest's per-command timeout.
/// </summary>
public sealed record GuestResult(string Name, int ExitCode, string Details)
{
    /// <summary>Exit code 0.</summary>
    public bool Succeeded => ExitCode == 0;

    /// <summary>The <c>key=value</c> words of <see cref="Details"/> (later keys win).</summary>
    public IReadOnlyDictionary<string, string> Values
    {
        get
        {
            var d = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var word in Details.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                int eq = word.IndexOf('=');
                if (eq > 0)
                    d[word[..eq]] = word[(eq + 1)..];
            }
            return d;
        }
    }

    /// <summary>The value of <c>key=</c> in <see cref="Details"/>, or null.</summary>
    public string? Value(string key) => Values.TryGetValue(key, out var v) ? v : null;

    /// <summary>The <c>crc32=</c> value as a number, or null when absent or "none".</summary>
    public uint? Crc32 =>
        uint.TryParse(Value("crc32"), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var c) ? c : null;

    /// <summary>The <c>bytes=</c> value, or null.</summary>
    public long? Bytes =>
        long.TryParse(Value("bytes"), NumberStyles.None, CultureInfo.InvariantCulture, out var b) ? b : null;

    /// <summary>Parses a serial line <c>RESULT name code details...</c>; null if it is not one.</summary>
    public static GuestResult? TryParse(string line)
    {
        if (!line.StartsWith("RESULT ", StringComparison.Ordinal))
            return null;
        var parts = line.Split(' ', 4);
        if (parts.Length < 3 || !int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out int code))
            return null;
        return new GuestResult(parts[1], code, parts.Length > 3 ? parts[3] : "");
    }

    /// <inheritdoc/>
    public override string ToString() => $"RESULT {Name} {ExitCode} {Details}";
}
