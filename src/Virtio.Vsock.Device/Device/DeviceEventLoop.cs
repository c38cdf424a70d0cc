using System.Collections.Concurrent;
using System.Diagnostics;

namespace Virtio.Vsock.Device;

/// <summary>
/// The one thread that runs a device: every queue kick, backend readiness signal, timer and control
/// operation is handed to it, so the device, the muxer and every connection state machine are only
/// ever touched by this thread and need no locks.
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> the thread, the wake-up event, the queue of control actions and the queue of
/// signalled work sources. <b>Must never:</b> spin while idle (it blocks on an event until a producer
/// wakes it or the next timer is due), run guest-driven work without bound in one turn (the device
/// caps each batch), let an exception escape (a signalled source that throws is handed the exception
/// through <see cref="ISignalSource.OnFault"/>; a turn that throws is reported to the fault handler,
/// which stops the device, and the loop keeps serving control actions), or leave a caller waiting
/// after it stopped (actions still queued then are abandoned: <see cref="Invoke{T}"/> throws
/// <see cref="ObjectDisposedException"/>).</para>
/// <para><b>Wake-up protocol.</b> A producer queues its work, then sets <c>_wakePending</c> with an
/// interlocked exchange and signals the event only when the flag was clear. The loop resets the event,
/// then clears the flag with an interlocked exchange (a full fence) before it reads the queues. Both
/// flag operations are totally ordered: a producer that saw the flag still set did its exchange before
/// the loop's clear, so its work was queued before the loop reads the queues; a producer whose exchange
/// comes after the clear sees it clear and signals. No wake-up is lost.</para>
/// <para>Producers on other threads call <see cref="Signal"/> (no allocation: the source is queued at
/// most once until the loop takes it) or <see cref="Post"/>/<see cref="Invoke{T}"/> for control-plane
/// work, which may allocate.</para>
/// </remarks>
internal sealed class DeviceEventLoop : IDisposable
{
    private readonly ConcurrentQueue<ControlAction> _actions = new();
    private readonly ConcurrentQueue<ISignalSource> _signalled = new();
    private readonly ManualResetEventSlim _wake = new(false, spinCount: 1);
    private readonly Thread _thread;
    private readonly Action<long> _turn;
    private readonly Func<long> _nextDeadline;
    private readonly Action<Exception> _onTurnFault;
    private int _wakePending;
    private volatile bool _stopping;
    private bool _turnFaulted;

    /// <summary>Creates the loop; <see cref="Start"/> starts its thread.</summary>
    /// <param name="name">The thread name.</param>
    /// <param name="turn">Called once per wake-up, after actions and signals were handled, with the current timestamp.</param>
    /// <param name="nextDeadline">The timestamp (<see cref="Stopwatch.GetTimestamp"/>) of the next timer, or <see cref="long.MaxValue"/>.</param>
    /// <param name="onTurnFault">Called on the loop when <paramref name="turn"/> threw; the turn is not called again.</param>
    public DeviceEventLoop(string name, Action<long> turn, Func<long> nextDeadline, Action<Exception> onTurnFault)
    {
        _turn = turn;
        _nextDeadline = nextDeadline;
        _onTurnFault = onTurnFault;
        _thread = new Thread(Run) { IsBackground = true, Name = name };
    }

    /// <summary>Starts the thread.</summary>
    public void Start() => _thread.Start();

    /// <summary>Whether the caller runs on the loop thread.</summary>
    public bool IsLoopThread => Thread.CurrentThread == _thread;

    /// <summary>Whether the loop stopped or is stopping.</summary>
    public bool IsStopping => _stopping;

    /// <summary>Wakes the loop (idempotent until the loop runs).</summary>
    public void Wake()
    {
        if (Interlocked.Exchange(ref _wakePending, 1) == 0)
        {
            _wake.Set();
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

    /// <summary>Stops the thread after its current turn. Actions still queued are abandoned (their callers get <see cref="ObjectDisposedException"/>).</summary>
    public void Dispose()
    {
        if (_stopping)
        {
            return;
        }

        _stopping = true;
        _wake.Set();
        if (!IsLoopThread)
        {
            _thread.Join();
        }

        AbandonQueued();
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

    private void Run()
    {
        while (!_stopping)
        {
            long deadline = _turnFaulted ? long.MaxValue : _nextDeadline();
            int timeout = Timeout.Infinite;
            if (deadline != long.MaxValue)
            {
                long remainingTicks = deadline - Stopwatch.GetTimestamp();
                timeout = remainingTicks <= 0 ? 0 : (int)Math.Min(int.MaxValue, (remainingTicks * 1000 / Stopwatch.Frequency) + 1);
            }

            if (timeout != 0)
            {
                _wake.Wait(timeout);
            }

            if (_stopping)
            {
                break;
            }

            _wake.Reset();
            Interlocked.Exchange(ref _wakePending, 0);
            RunActions();
            RunSignalled();
            RunTurn();
        }

        AbandonQueued();
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

    /// <summary>Work queued for the loop by another thread.</summary>
    private abstract class ControlAction
    {
        public abstract void Run();

        public abstract void Abandon(ObjectDisposedException reason);
    }

    private sealed class PostedAction(Action action, Action<ObjectDisposedException>? abandon) : ControlAction
    {
        public override void Run() => action();

        public override void Abandon(ObjectDisposedException reason) => abandon?.Invoke(reason);
    }

    private sealed class InvokedFunction<T>(Func<T> function) : ControlAction
    {
        public TaskCompletionSource<T> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override void Run()
        {
            try
            {
                Completion.TrySetResult(function());
            }
            catch (Exception exception)
            {
                Completion.TrySetException(exception);
            }
        }

        public override void Abandon(ObjectDisposedException reason) => Completion.TrySetException(reason);
    }
}
