using System.Runtime.InteropServices;

namespace Virtio.Vsock.Device;

/// <summary>
/// The device's own loop, offered to its backend (<see cref="IVsockBackendHost.FdPoller"/>) so that host
/// sockets are waited on by the same thread that runs the device: a socket becoming readable or writable is an
/// event on the device loop, with no thread of the backend's own and no hop between threads; so is a backend's
/// timer (<see cref="CreateTimer"/>).
/// </summary>
public interface IVsockFdPoller
{
    /// <summary>
    /// Starts watching <paramref name="fd"/> (any thread). Nothing is delivered until the handler asks with
    /// <see cref="IVsockFdWatch.RequestReadable"/> / <see cref="IVsockFdWatch.RequestWritable"/>. The watch holds a
    /// reference on the handle (its descriptor number cannot be reused while watched); dispose the watch before
    /// the handle.
    /// </summary>
    /// <param name="fd">A non-blocking descriptor (a socket, a pipe, an eventfd).</param>
    /// <param name="handler">Called on the device loop with what became ready.</param>
    /// <param name="error">0, or why the descriptor cannot be watched (an errno: EBADF when it or the loop is closed).</param>
    /// <returns>The watch, or <see langword="null"/> with <paramref name="error"/> set.</returns>
    IVsockFdWatch? Watch(SafeHandle fd, IVsockFdHandler handler, out int error);

    /// <summary>
    /// Creates a timer that runs <paramref name="handler"/> on the device loop (any thread). It is armed with
    /// <see cref="IVsockTimer.Schedule"/>; the loop waits for the nearest armed timer as part of its one
    /// <c>epoll_wait</c> (no timer descriptor, no extra thread). Timers keep running while the device is faulted or
    /// reset; they stop when the loop stops (<see cref="IVsockTimer.Schedule"/> then returns <see langword="false"/>).
    /// </summary>
    /// <param name="handler">Called on the device loop when the timer is due.</param>
    /// <returns>The timer, unarmed.</returns>
    IVsockTimer CreateTimer(IVsockTimerHandler handler);
}

/// <summary>A one-shot, re-armable timer of an <see cref="IVsockFdPoller"/>'s loop.</summary>
public interface IVsockTimer : IDisposable
{
    /// <summary>
    /// Arms the timer for <paramref name="deadline"/> (a <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/>
    /// value; one in the past runs on the loop's next turn), replacing any earlier deadline. Any thread; from the
    /// loop thread it costs no system call. It fires once; arm it again for another round.
    /// </summary>
    /// <param name="deadline">When to run the handler.</param>
    /// <returns><see langword="false"/> when the timer is disposed or the loop stopped (nothing will run).</returns>
    bool Schedule(long deadline);

    /// <summary>Disarms the timer (it stays usable). Any thread; from another thread, a run the loop already began
    /// may still finish.</summary>
    void Cancel();
}

/// <summary>What a timer's owner is told, on the device loop.</summary>
public interface IVsockTimerHandler
{
    /// <summary>The timer is due. Runs on the device loop: must not block.</summary>
    void OnTimer();

    /// <summary><see cref="OnTimer"/> threw: contain it (close what the timer served). Must not throw.</summary>
    /// <param name="exception">What <see cref="OnTimer"/> threw.</param>
    void OnTimerFault(Exception exception);
}

/// <summary>One descriptor watched by an <see cref="IVsockFdPoller"/>: one-shot requests for "tell me once when ready".</summary>
public interface IVsockFdWatch : IDisposable
{
    /// <summary>Asks for one <see cref="IVsockFdHandler.OnReady"/> with <see cref="VsockFdReadiness.Readable"/> when the
    /// descriptor is readable, has hung up or failed (soon if it already is). Costs no system call, except one
    /// <c>epoll_ctl</c> when input that arrived unrequested had switched input off and nothing is pending.</summary>
    /// <returns><see langword="false"/> when the watch is disposed or the descriptor can no longer be watched (nothing
    /// will be delivered).</returns>
    bool RequestReadable();

    /// <summary>Asks for one <see cref="IVsockFdHandler.OnReady"/> with <see cref="VsockFdReadiness.Writable"/> when the
    /// descriptor may take bytes or failed (soon if it already may). Costs no system call.</summary>
    /// <returns><see langword="false"/> when the watch is disposed or the descriptor can no longer be watched (nothing
    /// will be delivered).</returns>
    bool RequestWritable();
}

/// <summary>What a watched descriptor's owner is told, on the device loop.</summary>
public interface IVsockFdHandler
{
    /// <summary>Requested readiness arrived. Runs on the device loop: must not block.</summary>
    /// <param name="readiness">What became ready (only what was requested; <see cref="VsockFdReadiness.HangUp"/> rides
    /// with <see cref="VsockFdReadiness.Readable"/>).</param>
    void OnReady(VsockFdReadiness readiness);

    /// <summary><see cref="OnReady"/> threw: contain it (a connection resets itself). Must not throw.</summary>
    /// <param name="exception">What <see cref="OnReady"/> threw.</param>
    void OnFault(Exception exception);
}

/// <summary>Readiness of a watched descriptor.</summary>
[Flags]
public enum VsockFdReadiness
{
    /// <summary>Nothing.</summary>
    None = 0,

    /// <summary>Data, end of stream, a hang-up or an error is there to read.</summary>
    Readable = 1,

    /// <summary>A write may take bytes (or would report the error).</summary>
    Writable = 2,

    /// <summary>
    /// With <see cref="Readable"/>: the peer hung up or the descriptor failed (EPOLLRDHUP, EPOLLHUP or EPOLLERR) at or
    /// before this delivery. Without it, anything that arrives after the delivery is a new edge: a stream reader that
    /// got fewer bytes than it asked for may wait for the next delivery instead of reading again to see EAGAIN.
    /// </summary>
    HangUp = 4,
}
