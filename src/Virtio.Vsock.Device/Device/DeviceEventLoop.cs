using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Virtio.Vsock.Device;

/// <summary>
/// The one thread that runs a device. It sleeps in <c>epoll_wait</c> on everything the device serves: the
/// queues' kick eventfds (<see cref="WatchKick"/>), every host socket a backend registers
/// (<see cref="Watch"/>), one wake-up eventfd through which other threads hand it work, and the nearest
/// timer (the wait's timeout: the device's own timers and its backend's, <see cref="CreateTimer"/>). The device, the muxer and every connection state machine are only ever
/// touched by this thread and need no locks.
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> the thread, the epoll instance, the wake-up eventfd, the kick eventfds handed to it, the
/// table of watched host descriptors, the queue of control actions and the queue of signalled work sources.
/// <b>Must never:</b> spin while idle (it blocks in <c>epoll_wait</c> until a descriptor is ready, a producer
/// writes the wake-up eventfd or the next timer is due; it polls only within the <see cref="AdaptivePolling"/>
/// window, which closes after one wait longer than its maximum), run guest-driven work without bound in one turn
/// (the device caps each batch), let an exception escape (a watched descriptor's handler or a signalled
/// source that throws is handed the exception through <see cref="ISignalSource.OnFault"/> or
/// <see cref="IVsockFdHandler.OnFault"/>; a turn that throws is reported to the fault handler, which stops
/// the device, and the loop keeps serving control actions), or leave a caller waiting after it stopped
/// (actions still queued then are abandoned: <see cref="Invoke{T}"/> throws
/// <see cref="ObjectDisposedException"/>).</para>
/// <para><b>No thread hops on the data path.</b> A kick is an epoll event on this thread; a host socket's
/// readiness is an epoll event on this thread; a signal raised on this thread (a connection told by its
/// endpoint that it may proceed) is queued without a system call. Only other threads (the vhost-user
/// control thread, in-process endpoints, sibling devices) pay one eventfd write, and only when the loop is
/// not already woken.</para>
/// <para><b>Wake-up protocol.</b> A producer queues its work, then sets <c>_wakePending</c> with an
/// interlocked exchange and writes the eventfd only when the flag was clear. The loop drains the eventfd,
/// then clears the flag with an interlocked exchange (a full fence) before it reads the queues. Both flag
/// operations are totally ordered: a producer that saw the flag still set did its exchange before the
/// loop's clear, so its work was queued before the loop reads the queues; a producer whose exchange comes
/// after the clear sees it clear and writes the eventfd again. No wake-up is lost.</para>
/// <para><b>Polling.</b> Before it sleeps, the loop may poll for a few microseconds (<see cref="AdaptivePolling"/>):
/// only while events have been arriving that soon after it ran out of work, so a request/response exchange finds it
/// on a running CPU instead of paying a wake-up, and an idle device still sleeps.</para>
/// <para><b>Watched descriptors</b> are registered once, edge-triggered, for input and output; the loop
/// remembers which readiness arrived and delivers it once a handler asks (at once if it already arrived).
/// A request therefore costs no system call, and a spurious delivery (readiness that arrived before the
/// handler drained the socket for another reason) only costs the handler one <c>EAGAIN</c>.</para>
/// </remarks>
internal sealed unsafe partial class DeviceEventLoop : IVsockFdPoller, IDisposable
{
    private const int MaxEvents = 64;
    private const ulong WakeToken = 0;
    private const ulong FirstKickToken = 1;
    private const ulong FirstWatchToken = 16;

    private readonly ConcurrentQueue<ControlAction> _actions = new();
    private readonly ConcurrentQueue<ISignalSource> _signalled = new();
    private readonly Dictionary<ulong, LoopFdWatch> _watches = [];
    private readonly List<LoopFdWatch> _deliverNow = [];
    private readonly SafeHandle?[] _kicks;
    private readonly bool[] _kickIsPipe;
    private readonly SafeFileDescriptor _epoll;
    private readonly SafeFileDescriptor _wake;
    private readonly Thread _thread;
    private readonly Action<long> _turn;
    private readonly Func<long> _nextDeadline;
    private readonly Action<Exception> _onTurnFault;
    private readonly Action<int> _onKick;
    private readonly AdaptivePolling _polling;
    private ulong _nextToken = FirstWatchToken;
    private int _wakePending;
    private volatile bool _stopping;
    private bool _turnFaulted;
    private bool _turnAgain;

    /// <summary>Creates the loop (epoll instance and wake-up eventfd); <see cref="Start"/> starts its thread.</summary>
    /// <param name="name">The thread name.</param>
    /// <param name="queueCount">How many queues may hand it a kick eventfd.</param>
    /// <param name="onKick">Called on the loop for every queue whose kick eventfd fired (before the turn).</param>
    /// <param name="turn">Called once per wake-up, after actions and signals were handled, with the current timestamp.</param>
    /// <param name="nextDeadline">The timestamp (<see cref="Stopwatch.GetTimestamp"/>) of the next timer, or <see cref="long.MaxValue"/>.</param>
    /// <param name="onTurnFault">Called on the loop when <paramref name="turn"/> threw; the turn is not called again.</param>
    /// <param name="polling">How long the loop polls before it sleeps (see <see cref="AdaptivePolling"/>), or
    /// <see langword="null"/>: it never polls.</param>
    /// <exception cref="IOException">epoll or eventfd could not be created (out of descriptors).</exception>
    public DeviceEventLoop(string name, int queueCount, Action<int> onKick, Action<long> turn, Func<long> nextDeadline, Action<Exception> onTurnFault, AdaptivePolling? polling = null)
    {
        _polling = polling ?? new AdaptivePolling(0, Stopwatch.Frequency);
        _kicks = new SafeHandle?[queueCount];
        _kickIsPipe = new bool[queueCount];
        _onKick = onKick;
        _turn = turn;
        _nextDeadline = nextDeadline;
        _onTurnFault = onTurnFault;
        _epoll = SafeFileDescriptor.Adopt(Interop.Sys.EpollCreate1(Interop.Sys.EpollCloexec));
        if (_epoll.IsInvalid)
        {
            throw new IOException($"vsock device loop: epoll_create1 failed: errno {Marshal.GetLastPInvokeError()}.");
        }

        _wake = SafeFileDescriptor.Adopt(Interop.Sys.EventFd(0, Interop.Sys.EfdCloexec | Interop.Sys.EfdNonBlock));
        int error = _wake.IsInvalid
            ? Marshal.GetLastPInvokeError()
            : Interop.Sys.EpollControl(_epoll.Fd, Interop.Sys.EpollCtlAdd, _wake.Fd, Interop.Sys.EpollIn, WakeToken);
        if (error != 0)
        {
            _wake.Dispose();
            _epoll.Dispose();
            throw new IOException($"vsock device loop: wake-up eventfd setup failed: errno {error}.");
        }

        _thread = new Thread(Run) { IsBackground = true, Name = name };
    }

    /// <summary>Starts the thread.</summary>
    public void Start() => _thread.Start();

    /// <summary>Whether the caller runs on the loop thread.</summary>
    public bool IsLoopThread => Thread.CurrentThread == _thread;

    /// <summary>Whether the loop stopped or is stopping.</summary>
    public bool IsStopping => _stopping;

    /// <summary>Host descriptors currently watched.</summary>
    public int WatchCount
    {
        get
        {
            lock (_watches)
            {
                return _watches.Count;
            }
        }
    }

    /// <summary>Wakes the loop: from another thread one eventfd write unless already woken; on the loop, the device's
    /// turn runs (again): in this wake-up when it has not run yet, else the next wait does not sleep.</summary>
    public void Wake()
    {
        if (IsLoopThread)
        {
            _turnAgain = true;
            return;
        }

        if (Interlocked.Exchange(ref _wakePending, 1) == 0)
        {
            ulong one = 1;
            Interop.Sys.Write(_wake.Fd, &one, sizeof(ulong));
        }
    }

    /// <summary>Queues a source whose <see cref="ISignalSource.OnSignalled"/> the loop will call. The caller
    /// guarantees it queues a source at most once until it is taken (see <see cref="ISignalSource"/>).</summary>
    /// <param name="source">The source.</param>
    public void Signal(ISignalSource source)
    {
        _signalled.Enqueue(source);
        Wake();
    }

    /// <summary>Queues a control action. Exceptions it throws are traced and dropped: use <see cref="Invoke{T}"/> to see them.</summary>
    /// <param name="action">The action.</param>
    /// <param name="abandon">Called instead of <paramref name="action"/>, with the reason, when the loop stops first.</param>
    public void Post(Action action, Action<ObjectDisposedException>? abandon = null) =>
        Enqueue(new PostedAction(action, abandon));

    /// <summary>Runs <paramref name="function"/> on the loop and waits for its result (inline when already on the loop).</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="function">The work.</param>
    /// <returns>The result.</returns>
    /// <exception cref="ObjectDisposedException">The loop stopped before it ran the work.</exception>
    public T Invoke<T>(Func<T> function)
    {
        if (IsLoopThread)
        {
            return function();
        }

        var call = new InvokedFunction<T>(function);
        Enqueue(call);
        return call.Completion.Task.GetAwaiter().GetResult();
    }

    /// <summary>Runs <paramref name="action"/> on the loop and waits for it.</summary>
    /// <param name="action">The work.</param>
    /// <exception cref="ObjectDisposedException">The loop stopped before it ran the work.</exception>
    public void Invoke(Action action) => Invoke(() =>
    {
        action();
        return true;
    });

    /// <inheritdoc/>
    public IVsockFdWatch? Watch(SafeHandle fd, IVsockFdHandler handler, out int error)
    {
        ArgumentNullException.ThrowIfNull(fd);
        ArgumentNullException.ThrowIfNull(handler);
        error = 0;
        if (_stopping)
        {
            error = Interop.Errors.EBADF;
            return null;
        }

        bool added = false;
        try
        {
            if (!fd.IsClosed)
            {
                fd.DangerousAddRef(ref added);
            }
        }
        catch (ObjectDisposedException)
        {
        }

        if (!added)
        {
            error = Interop.Errors.EBADF;
            return null;
        }

        LoopFdWatch watch;
        lock (_watches)
        {
            watch = new LoopFdWatch(this, fd, _nextToken++, handler);
            _watches.Add(watch.Token, watch);
        }

        error = Interop.Sys.EpollControl(_epoll.Fd, Interop.Sys.EpollCtlAdd, watch.Fd, LoopFdWatch.EpollMask(LoopFdWatch.AllInterest), watch.Token);
        if (error != 0)
        {
            lock (_watches)
            {
                _watches.Remove(watch.Token);
            }

            fd.DangerousRelease();
            return null;
        }

        return watch;
    }

    /// <summary>Stops the thread after its current turn. Actions still queued are abandoned (their callers get <see cref="ObjectDisposedException"/>).</summary>
    public void Dispose()
    {
        if (_stopping)
        {
            return;
        }

        _stopping = true;
        ulong one = 1;
        Interop.Sys.Write(_wake.Fd, &one, sizeof(ulong));
        if (!IsLoopThread && _thread.ThreadState != System.Threading.ThreadState.Unstarted)
        {
            _thread.Join();
        }

        AbandonQueued();
        for (int q = 0; q < _kicks.Length; q++)
        {
            UnwatchKick(q);
        }

        LoopFdWatch[] remaining;
        lock (_watches)
        {
            remaining = [.. _watches.Values];
        }

        foreach (LoopFdWatch watch in remaining)
        {
            watch.Dispose();
        }

        // The thread is gone and no watch is left: the descriptors can go (a late watch Dispose only removes its
        // table entry, see Remove).
        lock (_watches)
        {
            _wake.Dispose();
            _epoll.Dispose();
        }
    }

    /// <summary>Stops running the device's turns after a fault in the loop's own work (called on the loop); control
    /// actions still run, so the device can be reset (see <see cref="ClearFault"/>) or disposed.</summary>
    /// <param name="exception">The fault.</param>
    public void Fail(Exception exception)
    {
        Debug.Assert(IsLoopThread, "Fail runs on the loop.");
        if (_turnFaulted)
        {
            return;
        }

        _turnFaulted = true;
        try
        {
            _onTurnFault(exception);
        }
        catch (Exception second)
        {
            Trace.TraceError("vsock device loop: the fault handler failed: {0}", second);
        }
    }

    /// <summary>Lets turns run again after a fault (on the loop, after the device was reset).</summary>
    public void ClearFault()
    {
        Debug.Assert(IsLoopThread, "ClearFault runs on the loop.");
        _turnFaulted = false;
    }

    /// <summary>A watch asked for readiness that already arrived: deliver it in this wake-up (on the loop).</summary>
    internal void DeliverSoon(LoopFdWatch watch)
    {
        if (IsLoopThread)
        {
            _deliverNow.Add(watch);
        }
        else
        {
            Post(watch.DeliverPending);
        }
    }

    /// <summary>Changes what a watch's descriptor is registered for (any thread; the watch holds its lock).</summary>
    /// <returns>0, or the errno (EBADF when the loop is closed).</returns>
    internal int Modify(LoopFdWatch watch, uint events)
    {
        lock (_watches)
        {
            return _epoll.IsClosed ? Interop.Errors.EBADF : Interop.Sys.EpollControl(_epoll.Fd, Interop.Sys.EpollCtlMod, watch.Fd, events, watch.Token);
        }
    }

    /// <summary>Removes a watch from the epoll set and the table (any thread).</summary>
    internal void Remove(LoopFdWatch watch)
    {
        lock (_watches)
        {
            _watches.Remove(watch.Token);
            if (!_epoll.IsClosed)
            {
                Interop.Sys.EpollControl(_epoll.Fd, Interop.Sys.EpollCtlDel, watch.Fd, 0, 0);
            }
        }
    }

    private void Enqueue(ControlAction action)
    {
        if (_stopping)
        {
            action.Abandon(Disposed());
            return;
        }

        _actions.Enqueue(action);
        Wake();
        if (_stopping)
        {
            // The loop may have drained the queue before this action arrived: whoever dequeues it first
            // (the loop, Dispose or this thread) completes it, exactly once.
            AbandonQueued();
        }
    }

    private void AbandonQueued()
    {
        while (_actions.TryDequeue(out ControlAction? action))
        {
            action.Abandon(Disposed());
        }
    }

    private static ObjectDisposedException Disposed() => new(nameof(VsockDevice), "The vsock device loop has stopped.");

    private int Timeout()
    {
        if (_turnAgain || _deliverNow.Count != 0 || !_signalled.IsEmpty || !_actions.IsEmpty)
        {
            return 0;
        }

        long deadline = Math.Min(_turnFaulted ? long.MaxValue : _nextDeadline(), _timers.NextDeadline);
        if (deadline == long.MaxValue)
        {
            return -1;
        }

        long remainingTicks = deadline - Stopwatch.GetTimestamp();
        return remainingTicks <= 0 ? 0 : (int)Math.Min(int.MaxValue, (remainingTicks * 1000 / Stopwatch.Frequency) + 1);
    }

    private void Run()
    {
        byte* events = stackalloc byte[MaxEvents * 16];
        while (!_stopping)
        {
            int count = Wait(events, Timeout());
            if (_stopping)
            {
                break;
            }

            if (count < 0)
            {
                int error = Marshal.GetLastPInvokeError();
                if (error != Interop.Errors.EINTR)
                {
                    // Only a broken epoll descriptor gets here: stop the device rather than spin.
                    Fail(new IOException($"vsock device loop: epoll_wait failed: errno {error}."));
                    count = 0;
                }
            }

            for (int i = 0; i < count; i++)
            {
                Dispatch(Interop.Sys.EpollData(events, i), Interop.Sys.EpollEvents(events, i));
            }

            DeliverRequested();
            RunActions();
            RunSignalled();
            RunTimers();

            // Whatever woke the loop so far (a kick, a connection's signal) is served by this turn: only a Wake
            // during the turn (a full batch) makes the next wait return at once. Clearing it earlier cost every
            // kick a second, empty epoll_wait.
            _turnAgain = false;
            RunTurn();
        }

        AbandonQueued();
    }

    private void Dispatch(ulong token, uint flags)
    {
        if (token == WakeToken)
        {
            ulong value;
            Interop.Sys.Read(_wake.Fd, &value, sizeof(ulong));
            Interlocked.Exchange(ref _wakePending, 0);
            return;
        }

        if (token < FirstWatchToken)
        {
            int queue = (int)(token - FirstKickToken);
            if ((uint)queue < (uint)_kicks.Length && _kicks[queue] is { } kick)
            {
                if (_kickIsPipe[queue])
                {
                    byte* drain = stackalloc byte[256];
                    while (Interop.Sys.Read((int)kick.DangerousGetHandle(), drain, 256) == 256)
                    {
                    }
                }

                _onKick(queue);
            }

            return;
        }

        LoopFdWatch? watch;
        lock (_watches)
        {
            _watches.TryGetValue(token, out watch);
        }

        watch?.OnEvents(flags);
    }

    private void DeliverRequested()
    {
        // Deliveries may ask for more deliveries (a handler re-requests at once): those run next wake-up.
        int count = _deliverNow.Count;
        for (int i = 0; i < count; i++)
        {
            _deliverNow[i].DeliverPending();
        }

        _deliverNow.RemoveRange(0, count);
    }

    private void RunActions()
    {
        while (_actions.TryDequeue(out ControlAction? action))
        {
            try
            {
                action.Run();
            }
            catch (Exception exception)
            {
                Trace.TraceError("vsock device loop action failed: {0}", exception);
            }
        }
    }

    private void RunSignalled()
    {
        // Sources signalled while these run wait for the next wake-up (the count bounds the turn). IsEmpty first: the
        // queue's Count takes a snapshot, which costs more than the usual answer, none.
        if (_signalled.IsEmpty)
        {
            return;
        }

        int count = _signalled.Count;
        for (int i = 0; i < count && _signalled.TryDequeue(out ISignalSource? source); i++)
        {
            try
            {
                source.OnSignalled();
            }
            catch (Exception exception)
            {
                try
                {
                    source.OnFault(exception);
                }
                catch (Exception second)
                {
                    Trace.TraceError("vsock device loop: a signalled source failed twice: {0}", second);
                }
            }
        }
    }

    private void RunTurn()
    {
        if (_turnFaulted)
        {
            return;
        }

        try
        {
            _turn(Stopwatch.GetTimestamp());
        }
        catch (Exception exception)
        {
            Fail(exception);
        }
    }
}
