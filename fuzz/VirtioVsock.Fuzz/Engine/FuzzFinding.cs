namespace VirtioVsock.Fuzz.Engine;

/// <summary>An input that made a target throw, with what it threw.</summary>
/// <param name="Target">The target name.</param>
/// <param name="Input">The input.</param>
/// <param name="Exception">The exception.</param>
/// <param name="Origin">Where the input came from (a corpus file, or the mutation number and seed).</param>
public sealed record FuzzFinding(string Target, byte[] Input, Exception Exception, string Origin)
{
    /// <summary>A report: target, origin, input in hex, exception with stack.</summary>
    /// <returns>The text.</returns>
    public override string ToString() =>
        $"{Target}: finding from {Origin}{Environment.NewLine}input ({Input.Length} bytes): {Convert.ToHexString(Input)}{Environment.NewLine}{Exception}";
}
