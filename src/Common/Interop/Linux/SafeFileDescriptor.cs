using System.Runtime.InteropServices;

/// <summary>
/// Owns one Linux file descriptor (an eventfd, an epoll instance, a socket received with SCM_RIGHTS...) and
/// closes it exactly once, when disposed or finalized.
/// </summary>
internal sealed class SafeFileDescriptor : SafeHandle
{
    private SafeFileDescriptor(int fd)
        : base(-1, ownsHandle: true)
    {
        SetHandle(fd);
    }

    /// <inheritdoc/>
    public override bool IsInvalid => handle < 0;

    /// <summary>The descriptor number; valid while the handle is alive (or referenced).</summary>
    internal int Fd => (int)handle;

    /// <summary>Takes ownership of <paramref name="fd"/> (which may be -1: the handle is then invalid).</summary>
    /// <param name="fd">The descriptor.</param>
    /// <returns>The owning handle.</returns>
    internal static SafeFileDescriptor Adopt(int fd) => new(fd);

    /// <inheritdoc/>
    protected override bool ReleaseHandle() => Interop.Sys.Close((int)handle) == 0;
}
