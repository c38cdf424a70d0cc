using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Virtio.Memory;

/// <summary>
/// Creates anonymous shared-memory files (Linux <c>memfd_create</c>), the kind of file a VMM backs guest
/// RAM with so that a vhost-user backend can map it too.
/// </summary>
public static class SharedMemoryFile
{
    /// <summary>Creates a memfd of <paramref name="size"/> bytes, close-on-exec.</summary>
    /// <param name="name">A name for debugging (shows in /proc/PID/fd).</param>
    /// <param name="size">The file size in bytes.</param>
    /// <returns>The owned file descriptor.</returns>
    /// <exception cref="IOException">The kernel refused.</exception>
    public static SafeFileHandle Create(string name, long size) => Create(name, size, seal: false);

    /// <summary>
    /// Creates a memfd of <paramref name="size"/> bytes, close-on-exec, sealed so that its size never changes
    /// (F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_SEAL), as QEMU seals guest RAM: a process that maps it (a
    /// vhost-user backend) can then never be made to fault on a page that was truncated away.
    /// </summary>
    /// <param name="name">A name for debugging (shows in /proc/PID/fd).</param>
    /// <param name="size">The file size in bytes.</param>
    /// <returns>The owned file descriptor.</returns>
    /// <exception cref="IOException">The kernel refused.</exception>
    public static SafeFileHandle CreateSealed(string name, long size) => Create(name, size, seal: true);

    private static SafeFileHandle Create(string name, long size, bool seal)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        int fd = Interop.Sys.MemfdCreate(name, Interop.Sys.MfdCloexec | (seal ? Interop.Sys.MfdAllowSealing : 0));
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"memfd_create failed: {Marshal.GetPInvokeErrorMessage(errno)}.");
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (Interop.Sys.FTruncate(fd, size) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            handle.Dispose();
            throw new IOException($"ftruncate of memfd to {size} bytes failed: {Marshal.GetPInvokeErrorMessage(errno)}.");
        }

        if (seal && Interop.Sys.Fcntl(fd, Interop.Sys.FAddSeals, Interop.Sys.FSealShrink | Interop.Sys.FSealGrow | Interop.Sys.FSealSeal) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            handle.Dispose();
            throw new IOException($"sealing the memfd failed: {Marshal.GetPInvokeErrorMessage(errno)}.");
        }

        return handle;
    }
}
