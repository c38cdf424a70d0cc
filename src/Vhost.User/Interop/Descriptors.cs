using System.Runtime.InteropServices;

namespace Vhost.User.Interop;

/// <summary>Helpers for eventfd counters and the other descriptors the frontend hands over.</summary>
internal static unsafe class Descriptors
{
    /// <summary>Creates a close-on-exec eventfd.</summary>
    /// <param name="nonBlocking">Whether reads and writes never block.</param>
    /// <returns>The owned descriptor.</returns>
    /// <exception cref="IOException">The kernel refused (descriptor limit).</exception>
    internal static FileDescriptorHandle Create(bool nonBlocking)
    {
        int fd = Libc.EventFd(0, Libc.EfdCloexec | (nonBlocking ? Libc.EfdNonblock : 0));
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"eventfd failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).");
        }

        return FileDescriptorHandle.Adopt(fd);
    }

    /// <summary>Adds <paramref name="value"/> to the counter of <paramref name="fd"/>.</summary>
    /// <returns>0 on success, otherwise the errno (EAGAIN: the counter is saturated, a signal is pending anyway).</returns>
    internal static int Signal(int fd, ulong value = 1)
    {
        while (true)
        {
            nint written = Libc.Write(fd, &value, sizeof(ulong));
            if (written == sizeof(ulong))
            {
                return 0;
            }

            int errno = written < 0 ? Marshal.GetLastPInvokeError() : Libc.EAGAIN;
            if (errno != Libc.EINTR)
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
            nint read = Libc.Read(fd, &buffer, sizeof(ulong));
            if (read >= 0)
            {
                value = buffer;
                return (int)read;
            }

            int errno = Marshal.GetLastPInvokeError();
            if (errno != Libc.EINTR)
            {
                value = 0;
                return -errno;
            }
        }
    }

    /// <summary>Sets O_NONBLOCK on <paramref name="fd"/>.</summary>
    /// <returns><see langword="true"/> on success.</returns>
    internal static bool SetNonBlocking(int fd)
    {
        int flags = Libc.Fcntl(fd, Libc.FGetFl, 0);
        if (flags < 0)
        {
            return false;
        }

        return (flags & Libc.ONonblock) != 0 || Libc.Fcntl(fd, Libc.FSetFl, flags | Libc.ONonblock) == 0;
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
        StatxBuffer buffer = default;
        if (Libc.Statx(fd, string.Empty, Libc.AtEmptyPath, Libc.StatxType | Libc.StatxSize, &buffer) != 0)
        {
            size = 0;
            fileType = 0;
            return Marshal.GetLastPInvokeError();
        }

        size = buffer.Size;
        fileType = (ushort)(buffer.Mode & Libc.SIfMt);
        return 0;
    }

    /// <summary>The file type of <paramref name="path"/> without following a final symlink.</summary>
    /// <returns>0 on success, otherwise the errno (ENOENT = 2 when missing).</returns>
    internal static int StatPath(string path, out ushort fileType) => StatPath(path, out fileType, out _);

    /// <summary>The file type and identity (device and inode) of <paramref name="path"/>, not following a final symlink.</summary>
    /// <returns>0 on success, otherwise the errno (ENOENT = 2 when missing).</returns>
    internal static int StatPath(string path, out ushort fileType, out (uint Major, uint Minor, ulong Inode) identity)
    {
        StatxBuffer buffer = default;
        if (Libc.Statx(Libc.AtFdCwd, path, Libc.AtSymlinkNoFollow, Libc.StatxType | Libc.StatxIno, &buffer) != 0)
        {
            fileType = 0;
            identity = default;
            return Marshal.GetLastPInvokeError();
        }

        fileType = (ushort)(buffer.Mode & Libc.SIfMt);
        identity = (buffer.DeviceMajor, buffer.DeviceMinor, buffer.Inode);
        return 0;
    }
}
