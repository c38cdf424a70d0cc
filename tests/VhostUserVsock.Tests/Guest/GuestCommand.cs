using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;

namespace VhostUserVsock.Tests.Guest;

/// <summary>
/// One command for the guest's /init to run (see tests/guest/build-guest.sh): a busybox sh
/// command line with <c>vsocktest</c> and <c>wait-output NAME REGEX [SECONDS]</c> on PATH.
/// The guest prints <c>OUT name line</c> for each output line and <c>RESULT name exit details</c>
/// when it ends. Background commands run concurrently; the guest waits for all of them before
/// GUEST-DONE.
/// </summary>
/// <param name="Name">Unique name, <c>[A-Za-z0-9_.-]+</c>.</param>
/// <param name="Command">Shell command line (one line).</param>
/// <param name="Background">Run in the background (e.g. a server the host connects to).</param>
public sealed partial record GuestCommand(string Name, string Command, bool Background = false)
{
    /// <summary>Longest kernel command line argument we produce (Linux's limit is 2048 in all).</summary>
    public const int MaxArgumentLength = 1900;

    /// <summary>A foreground <c>vsocktest ARGS...</c> invocation.</summary>
    public static GuestCommand Vsocktest(string name, params string[] args) =>
        new(name, "vsocktest " + string.Join(' ', args));

    /// <summary>A background <c>vsocktest ARGS...</c> invocation (a server, typically).</summary>
    public static GuestCommand VsocktestInBackground(string name, params string[] args) =>
        new(name, "vsocktest " + string.Join(' ', args), Background: true);

    /// <summary>The line for the guest's command text.</summary>
    public string ToLine()
    {
        if (!NamePattern().IsMatch(Name))
            throw new ArgumentException($"guest command name '{Name}' must match [A-Za-z0-9_.-]+");
        if (Command.Contains('\n') || Command.Contains('\r'))
            throw new ArgumentException($"guest command '{Name}' must be one line");
        if (string.IsNullOrWhiteSpace(Command))
            throw new ArgumentException($"guest command '{Name}' is empty");
        return (Background ? "&" : "") + Name + " " + Command;
    }

    /// <summary>The command text /init reads: one <see cref="ToLine"/> per line.</summary>
    public static string ToScript(IEnumerable<GuestCommand> commands)
    {
        var sb = new StringBuilder();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var c in commands)
        {
            if (!names.Add(c.Name))
                throw new ArgumentException($"guest command name '{c.Name}' is used twice");
            sb.Append(c.ToLine()).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>
    /// The kernel command line argument <c>vsocktest.cmds=BASE64</c> for the commands: base64 of
    /// the text, or of its gzip when the plain form is too long.
    /// </summary>
    public static string ToKernelArgument(IEnumerable<GuestCommand> commands)
    {
        var text = Encoding.UTF8.GetBytes(ToScript(commands));
        var arg = "vsocktest.cmds=" + Convert.ToBase64String(text);
        if (arg.Length <= MaxArgumentLength)
            return arg;
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.SmallestSize, leaveOpen: true))
            gz.Write(text);
        arg = "vsocktest.cmds=" + Convert.ToBase64String(ms.ToArray());
        if (arg.Length > MaxArgumentLength)
            throw new ArgumentException(
                $"guest commands too long for the kernel command line ({arg.Length} > {MaxArgumentLength} chars after gzip+base64)");
        return arg;
    }

    [GeneratedRegex("^[A-Za-z0-9_.-]+$")]
    private static partial Regex NamePattern();
}
