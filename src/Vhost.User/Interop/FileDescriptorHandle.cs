using System.Runtime.InteropServices;

namespace Vhost.User.Interop;

/// <summary>Owns one Linux file descriptor and closes it when released.</summary>
internal sealed class FileDescriptorHandle : SafeHandle
{
    private FileDescriptorHandle(int fd)
        : base(-1, ownsHandle: true)
    {
        SetHandle(fd);
    }

    /// <inheritdoc/>
    public override bool IsInvalid => handle < 0;

    /// <summary>The descriptor number; valid while the handle is alive (or referenced).</summary>
    internal int Fd => (int)handle;

    /// <summary>Takes ownership of <paramref name="fd"/>.</summary>
    internal static FileDescriptorHandle Adopt(int fd) => new(fd);

    /// <inheritdoc/>
    protected override bool ReleaseHandle() => Libc.Close((int)handle) == 0;
}
