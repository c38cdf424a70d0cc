using System.Globalization;
using VhostUserVsock.Tests.Guest;

namespace VhostUserVsock.Tests.RealGuest;

/// <summary>
/// What the kernel-suite tests run: the kernels (guest image variants built by
/// tests/guest/build-vsock-suite.sh), each suite's test list (<c>vsock_test --list</c>, saved at
/// build time), the tests skipped by name with the reason read from their source, and the
/// repetition count and limits (environment overrides). Owns no process.
/// </summary>
public static class VsockSuiteCatalog
{
    /// <summary>Debian sid's Linux 7.x and its suite.</summary>
    public const string Sid = "sid";

    /// <summary>Debian trixie's Linux 6.12 and its suite.</summary>
    public const string Trixie = GuestSuite.Trixie;

    /// <summary>The kernels the suite runs on, newest first.</summary>
    public static IReadOnlyList<string> Kernels { get; } = [Sid, Trixie];

    /// <summary>
    /// Tests that cannot apply, by kernel and exact name, with the reason (also in the README and
    /// docs/real-guest.md). Skipped by name only: a renamed test runs again.
    /// </summary>
    public static IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> Skipped { get; } =
        new Dictionary<string, IReadOnlyDictionary<string, string>>
        {
            [Trixie] = new Dictionary<string, string>
            {
                ["SOCK_STREAM SHUT_RD"] =
                    "races in the 6.12 suite itself: the server calls shutdown(SHUT_RD) and says SHUTRDDONE over the TCP "
                    + "control channel; the client then calls send() once (test_stream_check_sigpipe) and expects EPIPE, but "
                    + "the vsock SHUTDOWN packet travels a different path and can arrive after the send. The 7.x suite "
                    + "(same test, later fixed) passes every run.",
                [DoubleBindConnect] = DoubleBindConnectReason,
            },
            [Sid] = new Dictionary<string, string>
            {
                [DoubleBindConnect] = DoubleBindConnectReason,
            },
        };

    private const string DoubleBindConnect = "SOCK_STREAM double bind connect";

    private const string DoubleBindConnectReason =
        "races in the suite itself: the client binds local port peer_port+1, connects, closes, then binds the same port "
        + "again as soon as the server says LISTENING over the TCP control channel. close() keeps the port bound until the "
        + "server kernel's RST arrives over vsock (sent from its workqueue when the client's SHUTDOWN arrives), while the "
        + "server writes LISTENING from vsock_wait_remote_close() at the same moment: nothing orders the RST before the TCP "
        + "message, so under load the second bind() fails with EADDRINUSE (and the server's accept times out). Measured "
        + "here at load average ~20 on 2 cores: 7 of 10 runs (7.2) and 5 of 10 (6.12) passed.";

    /// <summary>How often every test runs in one boot: VSOCK_SUITE_REPEAT, default 10.</summary>
    public static int Repetitions => EnvInt("VSOCK_SUITE_REPEAT", 10, 1, 1000);

    /// <summary>Wall-clock limit of one test run (each side killed after it): VSOCK_SUITE_TEST_TIMEOUT seconds, default 120.</summary>
    public static TimeSpan PerTestLimit => TimeSpan.FromSeconds(EnvInt("VSOCK_SUITE_TEST_TIMEOUT", 120, 10, 3600));

    /// <summary>The image variant's name: <c>&lt;kernel&gt;-vsocksuite</c>.</summary>
    public static string ImageSuite(string kernel) => kernel + "-vsocksuite";

    /// <summary>The suite's tests (id, name) of <paramref name="kernel"/>, or null when the image is not built.</summary>
    public static IReadOnlyList<(int Id, string Name)>? Tests(string kernel)
    {
        if (GuestImage.FindRepositoryRoot() is not { } root)
            return null;
        var list = Path.Join(root, ".work", "guest", ImageSuite(kernel), "vsock_test.list");
        if (!File.Exists(list))
            return null;
        var tests = new List<(int, string)>();
        foreach (var line in File.ReadLines(list))
        {
            var tab = line.IndexOf('\t', StringComparison.Ordinal);
            if (tab > 0 && int.TryParse(line.AsSpan(0, tab), NumberStyles.None, CultureInfo.InvariantCulture, out var id))
                tests.Add((id, line[(tab + 1)..]));
        }
        return tests;
    }

    /// <summary>The tests that run on <paramref name="kernel"/>: all but <see cref="Skipped"/>.</summary>
    public static IReadOnlyList<(int Id, string Name)>? RunnableTests(string kernel) =>
        Tests(kernel)?.Where(t => !Skipped[kernel].ContainsKey(t.Name)).ToList();

    private static int EnvInt(string name, int fallback, int min, int max) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.None, CultureInfo.InvariantCulture, out var v)
            ? Math.Clamp(v, min, max)
            : fallback;
}
