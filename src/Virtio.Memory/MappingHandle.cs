using System.Runtime.InteropServices;

namespace Virtio.Memory;

/// <summary>
/// Owns one mmap'ed host range and unmaps it when the last reference is released. Being a
/// <see cref="SafeHandle"/>, it is reference counted: a <see cref="GuestMemory"/> that uses the
/// mapping holds a reference, so the range stays mapped until every user is done with it.
/// </summary>
internal sealed class MappingHandle : SafeHandle
{
    private readonly nuint _length;

    private MappingHandle(nint address, nuint length)
        : base(Interop.Sys.MapFailed, ownsHandle: true)
    {
        _length = length;
        SetHandle(address);
    }

    /// <inheritdoc/>
    public override bool IsInvalid => handle == Interop.Sys.MapFailed || handle == 0;

    /// <summary>The first mapped host byte.</summary>
    internal nint Address => handle;

    /// <summary>Maps <paramref name="length"/> bytes; throws on failure (setup path).</summary>
    internal static MappingHandle Map(nuint length, int protection, int flags, int fd, long offset)
    {
        nint address = Interop.Sys.Mmap(0, length, protection, flags, fd, offset);
        if (address == Interop.Sys.MapFailed)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"mmap of {length} bytes failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).");
        }

        return new MappingHandle(address, length);
    }

    /// <inheritdoc/>
    protected override bool ReleaseHandle() => Interop.Sys.Munmap(handle, _length) == 0;
}
