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
/// caps each batch), or let an exception escape a turn (control actions report theirs to the caller).</para>
/// <para>Producers on other threads call <see cref="Signal"/> (no allocation: the source is queued at
/// most once until the loop takes it) or <see cref="Post"/>/<see cref="Invoke{T}"/> for control-plane
/// work, which may allocate.</para>
/// </remarks>
internal sealed class DeviceEventLoop : IDisposable
{
    private readonly ConcurrentQueue<Action> _actions = new();
    private readonly ConcurrentQueue<ISignalSource> _signalled = new();
    private readonly ManualResetEventSlim _wake = new(false, spinCount: 1);
    private readonly Thread _thread;
    private readonly Action<long> _turn;
    private readonly Func<long> _nextDeadline;
    private int _wakePending;
    private volatile bool _stopping;

    /// <summary>Creates the loop; <see cref="Start"/> starts its thread.</summary>
    /// <param name="name">The thread name.</param>
    /// <param name="turn">Called once per wake-up, after actions and signals were handled, with the current timestamp.</param>
    /// <param name="nextDeadline">The timestamp (<see cref="Stopwatch.GetTimestamp"/>) of the next timer, or <see cref="long.MaxValue"/>.</param>
    public DeviceEventLoop(string name, Action<long> turn, Func<long> nextDeadline)
    {
        _turn = turn;
        _nextDeadline = nextDeadline;
        _thread = new Thread(Run) { IsBackground = true, Name = name };
    }

    /// <summary>Starts the thread.</summary>
    public void Start() => _thread.Start();

    /// <summary>Whether the caller runs on the loop thread.</summary>
    public bool IsLoopThread => Thread.CurrentThread == _thread;

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

    /// <summary>Queues a control action. Exceptions it throws are swallowed: use <see cref="Invoke{T}"/> to see them.</summary>
    /// <param name="action">The action.</param>
    public void Post(Action action)
    {
        _actions.Enqueue(action);
        Wake();
    }

    /// <summary>Runs <paramref name="function"/> on the loop and waits for its result (inline when already on the loop).</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="function">The work.</param>
    /// <returns>The result.</returns>
    public T Invoke<T>(Func<T> function)
    {
        if (IsLoopThread)
        {
            return function();
        }

        if (_stopping)
        {
            throw new ObjectDisposedException(nameof(DeviceEventLoop));
        }

        var completion = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            try
            {
                completion.TrySetResult(function());
            }
            catch (Exception exception)
            {
                completion.TrySetException(exception);
            }
        });
        return completion.Task.GetAwaiter().GetResult();
    }

    /// <summary>Runs <paramref name="action"/> on the loop and waits for it.</summary>
    /// <param name="action">The work.</param>
    public void Invoke(Action action) => Invoke(() =>
    {
        action();
        return true;
    });

    /// <summary>Stops the thread after its current turn. Pending actions are dropped.</summary>
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
    }

    private void Run()
    {
        while (!_stopping)
        {
            long deadline = _nextDeadline();
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
            Volatile.Write(ref _wakePending, 0);

            while (_actions.TryDequeue(out Action? action))
            {
                try
                {
                    action();
                }
                catch (Exception exception)
                {
                    Trace.TraceError("vsock device loop action failed: {0}", exception);
                }
            }

            int count = _signalled.Count;
            for (int i = 0; i < count && _signalled.TryDequeue(out ISignalSource? source); i++)
            {
                source.OnSignalled();
            }

            _turn(Stopwatch.GetTimestamp());
        }
    }
}
