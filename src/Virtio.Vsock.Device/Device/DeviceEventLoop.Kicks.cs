using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Virtio.Vsock.Device;

/// <summary>
/// The queues' kick descriptors in a <see cref="DeviceEventLoop"/>'s epoll set: one per queue, owned by the loop
/// from <see cref="WatchKick"/> until <see cref="UnwatchKick"/> (or the loop's dispose) closes it. Runs on the loop.
/// </summary>
internal sealed unsafe partial class DeviceEventLoop
{
    /// <summary>
    /// Waits on <paramref name="eventFd"/> as queue <paramref name="queue"/>'s kick (on the loop): each time it is
    /// written the loop calls the kick handler. Takes ownership of the descriptor; a kick descriptor already set for
    /// the queue is closed first.
    /// </summary>
    /// <remarks>An eventfd is watched edge-triggered and never read: every write is a new edge, so a kick costs the
    /// loop no system call (its counter cannot overflow: that takes 2^64 kicks). A pipe (which vhost-user also allows)
    /// is level-triggered and drained, or its writer would block once the pipe is full.</remarks>
    /// <param name="queue">The queue index.</param>
    /// <param name="eventFd">An eventfd (or the read end of a pipe) the driver's kicks write to.</param>
    /// <returns>0, or the errno of <c>epoll_ctl</c> (the descriptor is then closed).</returns>
    public int WatchKick(int queue, SafeHandle eventFd)
    {
        Debug.Assert(IsLoopThread, "WatchKick runs on the loop.");
        UnwatchKick(queue);
        bool added = false;
        eventFd.DangerousAddRef(ref added);
        int fd = (int)eventFd.DangerousGetHandle();
        Interop.Sys.StatxBuffer status;
        bool isPipe = Interop.Sys.Statx(fd, string.Empty, Interop.Sys.AtEmptyPath, Interop.Sys.StatxType, &status) == 0
            && status.FileType == Interop.Sys.SIfIfo;
        uint events = isPipe ? Interop.Sys.EpollIn : Interop.Sys.EpollIn | Interop.Sys.EpollEdgeTriggered;
        int error = Interop.Sys.EpollControl(_epoll.Fd, Interop.Sys.EpollCtlAdd, fd, events, FirstKickToken + (ulong)queue);
        eventFd.DangerousRelease();
        if (error != 0)
        {
            eventFd.Dispose();
            return error;
        }

        _kicks[queue] = eventFd;
        _kickIsPipe[queue] = isPipe;
        return 0;
    }

    /// <summary>Stops waiting on queue <paramref name="queue"/>'s kick eventfd and closes it (on the loop). Idempotent.</summary>
    /// <param name="queue">The queue index.</param>
    public void UnwatchKick(int queue)
    {
        Debug.Assert(IsLoopThread || _stopping, "UnwatchKick runs on the loop.");
        SafeHandle? old = _kicks[queue];
        if (old is null)
        {
            return;
        }

        _kicks[queue] = null;
        bool added = false;
        old.DangerousAddRef(ref added);
        Interop.Sys.EpollControl(_epoll.Fd, Interop.Sys.EpollCtlDel, (int)old.DangerousGetHandle(), 0, 0);
        old.DangerousRelease();
        old.Dispose();
    }
}
