
namespace Vhost.User;

/// <summary>
/// The <see cref="IVringNotifier"/> of one queue: writes to the call eventfd currently set by
/// <c>SET_VRING_CALL</c>. The descriptor can be swapped at any time; a notification racing with the swap
/// goes to the old or the new descriptor, never to a closed one.
/// </summary>
internal sealed class CallNotifier : IVringNotifier, IDisposable
{
    private SafeFileDescriptor? _fd;

    /// <summary>Whether a call descriptor is set.</summary>
    internal bool HasFd => Volatile.Read(ref _fd) is not null;

    /// <summary>Replaces the call descriptor (taking ownership of <paramref name="fd"/>) and closes the old one.</summary>
    internal void SetFd(SafeFileDescriptor? fd) => Interlocked.Exchange(ref _fd, fd)?.Dispose();

    /// <inheritdoc/>
    public bool Notify()
    {
        SafeFileDescriptor? fd = Volatile.Read(ref _fd);
        if (fd is null)
        {
            return false;
        }

        bool added = false;
        try
        {
            fd.DangerousAddRef(ref added);
            int errno = Descriptors.Signal(fd.Fd);
            return errno == 0 || errno == Interop.Errors.EAGAIN;
        }
        catch (ObjectDisposedException)
        {
            // Swapped and closed between the read and the reference: the new descriptor takes over.
            return false;
        }
        finally
        {
            if (added)
            {
                fd.DangerousRelease();
            }
        }
    }

    /// <summary>Closes the call descriptor; later notifications do nothing.</summary>
    public void Dispose() => SetFd(null);
}
