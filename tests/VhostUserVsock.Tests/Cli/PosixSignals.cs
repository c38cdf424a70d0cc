using System.Runtime.InteropServices;

namespace VhostUserVsock.Tests.Cli;

/// <summary>Sends signals to processes (.NET only sends SIGKILL).</summary>
internal static partial class PosixSignals
{
    public const int SIGTERM = 15;
    public const int SIGINT = 2;

    public static void Send(int processId, int signal)
    {
        if (Kill(processId, signal) != 0)
        {
            throw new InvalidOperationException($"kill({processId}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int processId, int signal);
}
