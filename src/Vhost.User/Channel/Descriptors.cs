using System.Runtime.InteropServices;

namespace Vhost.User;

/// <summary>
/// Helpers for eventfd counters and the other descriptors the frontend hands over (kick, call, err, memory
/// regions). Built on the common Linux interop; owns no descriptor (callers pass numbers of handles they hold).
/// </summary>
internal static unsafe class Descriptors
{
    /// <summary>Creates a close-on-exec eventfd.</summary>
    /// <param name="nonBlocking">Whether reads and writes never block.</param>
    /// <returns>The owned descriptor.</returns>
    /// <exception cref="IOException">The kernel refused (descriptor limit).</exception>
    internal static SafeFileDescriptor Create(bool nonBlocking)
    {
        int fd = Interop.Sys.EventFd(0, Interop.Sys.EfdCloexec | (nonBlocking ? Interop.Sys.EfdNonBlock : 0));
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"eventfd failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).");
        }

        return SafeFileDescriptor.Adopt(fd);
    }

    /// <summary>Adds <paramref name="value"/> to the counter of <paramref name="fd"/>.</summary>
    /// <returns>0 on success, otherwise the errno (EAGAIN: the counter is saturated, a signal is pending anyway).</returns>
    internal static int Signal(int fd, ulong value = 1)
    {
        while (true)
        {
            nint written = Interop.Sys.Write(fd, &value, sizeof(ulong));
            if (written == sizeof(ulong))
            {
                return 0;
            }

            int errno = written < 0 ? Marshal.GetLastPInvokeError() : Interop.Errors.EAGAIN;
            if (errno != Interop.Errors.EINTR)
            {
                return errno;
            }
        }
    }

    /// <summary>Reads (and so clears) the counter of <paramref name="fd"/>.</summary>
    /// <param name="fd">The descriptor.</param>
    /// <param name="value">The counter value read.</param>
    /// <returns>The number of bytes read (8 for an eventfd, 0 at end of file), or -errno.</returns>
    internal static int Drain(int fd, out ulong value)
    {
        ulong buffer = 0;
        while (true)
        {
            nint read = Interop.Sys.Read(fd, &buffer, sizeof(ulong));
            if (read >= 0)
            {
                value = buffer;
                return (int)read;
            }

            int errno = Marshal.GetLastPInvokeError();
            if (errno != Interop.Errors.EINTR)
            {
                value = 0;
                return -errno;
            }
        }
    }

    /// <summary>Waits until <paramref name="fd"/> is readable (or has an error or hang-up).</summary>
    /// <param name="fd">The descriptor.</param>
    /// <param name="timeoutMilliseconds">The longest wait; -1 for none.</param>
    /// <returns><see langword="true"/> when readable before the deadline.</returns>
    internal static bool WaitReadable(int fd, int timeoutMilliseconds)
    {
        Interop.Sys.PollFd poll = new() { Fd = fd, Events = Interop.Sys.PollIn };
        long deadline = Environment.TickCount64 + timeoutMilliseconds;
        while (true)
        {
            int ready = Interop.Sys.Poll(&poll, 1, timeoutMilliseconds);
            if (ready >= 0 || Marshal.GetLastPInvokeError() != Interop.Errors.EINTR)
            {
                return ready > 0 && (poll.ReturnedEvents & Interop.Sys.PollIn) != 0;
            }

            if (timeoutMilliseconds >= 0)
            {
                timeoutMilliseconds = (int)Math.Max(0, deadline - Environment.TickCount64);
            }
        }
    }

    /// <summary>Sets O_NONBLOCK on <paramref name="fd"/>.</summary>
    /// <returns><see langword="true"/> on success.</returns>
    internal static bool SetNonBlocking(int fd)
    {
        int flags = Interop.Sys.Fcntl(fd, Interop.Sys.FGetFl, 0);
        if (flags < 0)
        {
            return false;
        }

        return (flags & Interop.Sys.ONonBlock) != 0 || Interop.Sys.Fcntl(fd, Interop.Sys.FSetFl, flags | Interop.Sys.ONonBlock) == 0;
    }

    /// <summary>
    /// What kind of descriptor <paramref name="fd"/> is, from its <c>/proc/self/fd</c> link
    /// (for example <c>anon_inode:[eventfd]</c> or <c>pipe:[1234]</c>); <see langword="null"/> when unknown.
    /// </summary>
    internal static string? Describe(int fd)
    {
        try
        {
            return new FileInfo($"/proc/self/fd/{fd}").LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Whether <paramref name="fd"/> can serve as a kick or call notifier (an eventfd or a pipe).</summary>
    /// <param name="fd">The descriptor.</param>
    /// <param name="kind">The kind found, for log lines.</param>
    /// <returns><see langword="true"/> for an eventfd or a pipe, or when the kind cannot be determined.</returns>
    internal static bool IsNotifier(int fd, out string kind)
    {
        string? description = Describe(fd);
        kind = description ?? "unknown";
        return description is null
            || description == "anon_inode:[eventfd]"
            || description.StartsWith("pipe:", StringComparison.Ordinal);
    }

    /// <summary>The size and file type of an open descriptor (statx with AT_EMPTY_PATH).</summary>
    /// <returns>0 on success, otherwise the errno.</returns>
    internal static int Stat(int fd, out ulong size, out ushort fileType)
    {
        Interop.Sys.StatxBuffer buffer = default;
        if (Interop.Sys.Statx(fd, string.Empty, Interop.Sys.AtEmptyPath, Interop.Sys.StatxType | Interop.Sys.StatxSize, &buffer) != 0)
        {
            size = 0;
            fileType = 0;
            return Marshal.GetLastPInvokeError();
        }

        size = buffer.Size;
        fileType = (ushort)(buffer.Mode & Interop.Sys.SIfMt);
        return 0;
    }
}
