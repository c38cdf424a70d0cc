using System.Text;

namespace VirtioVsock.Fuzz.Corpus;

/// <summary>Seeds for <c>connect-line</c>: valid lines (as socat and the Firecracker docs send them), each
/// edge of the grammar, and lines that must be refused, several with chunkings.</summary>
internal static class ConnectLineSeeds
{
    public static IReadOnlyList<(string Name, byte[] Data)> All() =>
    [
        ("plain", Seed([], "CONNECT 1234\n")),
        ("with-early-data", Seed([3, 1, 5], "CONNECT 5000\nhello, guest")),
        ("crlf-tabs-lowercase", Seed([1], "connect\t\t42 \t\r\nGET / HTTP/1.1\r\n")),
        ("max-port", Seed([7, 0, 9], "CONNECT 4294967295\n")),
        ("leading-zeros-32-bytes", Seed([], "CONNECT 0000000000000000000052\n")),
        ("port-overflow", Seed([2], "CONNECT 4294967296\n")),
        ("not-connect", Seed([], "GET / HTTP/1.1\r\n")),
        ("missing-port", Seed([4], "CONNECT \r\n")),
        ("bare-cr", Seed([], "CONNECT 12\r3\n")),
        ("too-long", Seed([16, 16], "CONNECT 1                                  \n")),
        ("sign", Seed([], "CONNECT +5\n")),
        ("no-newline", Seed([1, 1, 1], "CONNECT 77")),
    ];

    private static byte[] Seed(byte[] chunks, string stream) =>
        [(byte)chunks.Length, .. chunks, .. Encoding.ASCII.GetBytes(stream)];
}
