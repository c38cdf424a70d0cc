using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Virtio.Vsock.Device;

/// <summary>
/// One host descriptor in a <see cref="DeviceEventLoop"/>'s epoll set: registered once, edge-triggered for input
/// and output, it remembers what readiness arrived and delivers it once per request.
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> a reference on the descriptor's handle (released on <see cref="Dispose"/>), the arrived
/// readiness, the requested interest and the interest registered with epoll. <b>Must never:</b> deliver readiness
/// that was not requested, lose an edge that arrived before a request (it is kept until asked for), or call the
/// handler after <see cref="Dispose"/> returned on the loop thread.</para>
/// <para><b>Unwanted input is switched off.</b> Edge-triggered epoll reports an edge for every wake-up of the
/// socket: each write of a host peer that streams while its connection reads without asking (it has data, it waits
/// for guest buffers or credit) would wake the loop for nothing, about one wake-up per two 4 KiB packets host to
/// guest. So the first input readiness that arrives unrequested takes input out of the registration
/// (<c>EPOLL_CTL_MOD</c>); it stays arrived, so the next request is delivered at once, and a request that finds
/// nothing arrived puts input back, and <c>EPOLL_CTL_MOD</c> reports it at once if it is already ready, so no edge
/// is lost. A connection that always asks before its data comes (request/response) never pays the call.
/// Output stays registered: its edges come only as the peer drains what this side wrote, and switching them off
/// too was measured to cost the 1-byte request/response 4 us at the median (55.5 -> 59.5 us in alternating runs
/// of the load generator): the edge of the peer reading a request wakes the loop just before the reply comes.
/// EPOLLHUP and EPOLLERR cannot be switched off; they stay arrived like the rest.</para>
/// <para><b>Threading:</b> events, requests and deliveries normally all run on the loop; requests and dispose may
/// also come from other threads (a backend's reply continuation), so the two masks are behind a small lock,
/// taken once per event or request.</para>
/// </remarks>
internal sealed class LoopFdWatch : IVsockFdWatch
{
    private readonly DeviceEventLoop _loop;
    private readonly SafeHandle _handle;
    private readonly IVsockFdHandler _handler;
    private readonly object _lock = new();
    private VsockFdReadiness _arrived;
    private VsockFdReadiness _wanted;
    private VsockFdReadiness _registered = AllInterest;
    private bool _queued;
    private bool _disposed;

    internal LoopFdWatch(DeviceEventLoop loop, SafeHandle handle, ulong token, IVsockFdHandler handler)
    {
        _loop = loop;
        _handle = handle;
        Token = token;
        _handler = handler;
        Fd = (int)handle.DangerousGetHandle();
    }

    /// <summary>Both directions: what a descriptor is registered for when it is first watched.</summary>
    internal const VsockFdReadiness AllInterest = VsockFdReadiness.Readable | VsockFdReadiness.Writable;

    /// <summary>The direction whose unrequested readiness takes it out of the registration (see remarks).</summary>
    private const VsockFdReadiness SwitchedOffWhenUnwanted = VsockFdReadiness.Readable;

    /// <summary>The epoll token.</summary>
    internal ulong Token { get; }

    /// <summary>Epoll events reported for this descriptor so far (written on the loop; for tests and diagnostics).</summary>
    internal int EventCount { get; private set; }

    /// <summary>The descriptor number (valid while the watch holds its reference).</summary>
    internal int Fd { get; }

    /// <inheritdoc/>
    public bool RequestReadable() => Request(VsockFdReadiness.Readable);

    /// <inheritdoc/>
    public bool RequestWritable() => Request(VsockFdReadiness.Writable);

    /// <summary>Removes the descriptor from the loop and releases the handle reference. Idempotent.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _wanted = VsockFdReadiness.None;
            _loop.Remove(this);
        }

        _handle.DangerousRelease();
    }

    /// <summary>Raw epoll events for this descriptor (on the loop).</summary>
    internal void OnEvents(uint events)
    {
        EventCount++;
        VsockFdReadiness ready = VsockFdReadiness.None;
        if ((events & (Interop.Sys.EpollIn | Interop.Sys.EpollErr | Interop.Sys.EpollHup | Interop.Sys.EpollRdHup)) != 0)
        {
            ready |= VsockFdReadiness.Readable;
        }

        if ((events & (Interop.Sys.EpollErr | Interop.Sys.EpollHup | Interop.Sys.EpollRdHup)) != 0)
        {
            ready |= VsockFdReadiness.HangUp;
        }

        if ((events & (Interop.Sys.EpollOut | Interop.Sys.EpollErr | Interop.Sys.EpollHup)) != 0)
        {
            ready |= VsockFdReadiness.Writable;
        }

        lock (_lock)
        {
            _arrived |= ready;
            VsockFdReadiness unwanted = ready & _registered & ~_wanted & SwitchedOffWhenUnwanted;
            if (unwanted != VsockFdReadiness.None && !_disposed)
            {
                // Kept as arrived; the registration stops reporting it until it is asked for (see remarks). A failed
                // change only means more wake-ups.
                _registered &= ~unwanted;
                _loop.Modify(this, EpollMask(_registered));
            }
        }

        DeliverPending();
    }

    /// <summary>The edge-triggered epoll mask for <paramref name="interest"/>.</summary>
    internal static uint EpollMask(VsockFdReadiness interest) =>
        Interop.Sys.EpollEdgeTriggered
        | ((interest & VsockFdReadiness.Readable) != 0 ? Interop.Sys.EpollIn | Interop.Sys.EpollRdHup : 0)
        | ((interest & VsockFdReadiness.Writable) != 0 ? Interop.Sys.EpollOut : 0);

    /// <summary>Delivers what is both arrived and wanted (on the loop).</summary>
    internal void DeliverPending()
    {
        VsockFdReadiness fire;
        lock (_lock)
        {
            _queued = false;
            if (_disposed)
            {
                return;
            }

            fire = _arrived & _wanted;
            if ((fire & VsockFdReadiness.Readable) != 0)
            {
                // A hang-up rides with the readable delivery (and is then forgotten like the rest).
                fire |= _arrived & VsockFdReadiness.HangUp;
            }

            _arrived &= ~fire;
            _wanted &= ~fire;
        }

        if (fire == VsockFdReadiness.None)
        {
            return;
        }

        try
        {
            _handler.OnReady(fire);
        }
        catch (Exception exception)
        {
            try
            {
                _handler.OnFault(exception);
            }
            catch (Exception second)
            {
                Trace.TraceError("vsock device loop: a watched descriptor's handler failed twice: {0}", second);
            }
        }
    }

    private bool Request(VsockFdReadiness readiness)
    {
        bool deliverSoon;
        lock (_lock)
        {
            if (_disposed)
            {
                return false;
            }

            _wanted |= readiness;
            deliverSoon = (_arrived & readiness) != 0 && !_queued;
            _queued |= deliverSoon;
            VsockFdReadiness register = readiness & ~_registered & ~_arrived;
            if (register != VsockFdReadiness.None)
            {
                // Nothing arrived: report it again. EPOLL_CTL_MOD polls the descriptor, so readiness that came while
                // it was switched off is reported now. If the change fails the descriptor is gone: the caller's next
                // read or write says so.
                _registered |= register;
                if (_loop.Modify(this, EpollMask(_registered)) != 0)
                {
                    _registered &= ~register;
                    _wanted &= ~readiness;
                    return false;
                }
            }
        }

        if (deliverSoon)
        {
            _loop.DeliverSoon(this);
        }

        return true;
    }
}
