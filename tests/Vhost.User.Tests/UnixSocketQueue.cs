using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Vhost.User.Tests;

/// <summary>
/// How many bytes a connected Unix socket has sent that its peer has not read yet (<c>SIOCOUTQ</c>). Lets a test
/// wait until the peer consumed what was written, instead of sleeping and hoping it did. Owns nothing.
/// </summary>
internal static partial class UnixSocketQueue
{
    private const ulong SiocOutQ = 0x5411; // SIOCOUTQ == TIOCOUTQ on Linux

    /// <summary>Bytes written on <paramref name="socket"/> not yet read by the peer.</summary>
    public static int UnreadByPeer(Socket socket)
    {
        int result = IoctlInt((int)socket.SafeHandle.DangerousGetHandle(), SiocOutQ, out int value);
        Assert.True(result == 0, $"ioctl(SIOCOUTQ) failed: errno {Marshal.GetLastPInvokeError()}");
        return value;
    }

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int IoctlInt(int fd, ulong request, out int value);
}
