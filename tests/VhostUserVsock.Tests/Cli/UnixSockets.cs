using System.Net.Sockets;

namespace VhostUserVsock.Tests.Cli;

/// <summary>Creates Unix socket files for tests: live listeners and stale leftovers.</summary>
internal static class UnixSockets
{
    /// <summary>A socket listening at <paramref name="path"/>; disposing it closes it and removes the file.</summary>
    public static Socket Listen(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(path));
        socket.Listen();
        return socket;
    }

    /// <summary>Leaves a socket file at <paramref name="path"/> that nobody listens on, as a crashed daemon would.</summary>
    public static void CreateStale(string path)
    {
        string bound = path + ".tmp";
        using Socket socket = Listen(bound);
        File.Move(bound, path);
    }
}
