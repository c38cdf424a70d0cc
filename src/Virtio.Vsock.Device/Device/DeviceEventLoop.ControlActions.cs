namespace Virtio.Vsock.Device;

/// <summary>
/// The control-plane work other threads hand a <see cref="DeviceEventLoop"/> (<see cref="DeviceEventLoop.Post"/>,
/// <see cref="DeviceEventLoop.Invoke{T}"/>): each runs once on the loop, or is abandoned exactly once with
/// <see cref="ObjectDisposedException"/> when the loop stopped first. These may allocate: they are not the data path.
/// </summary>
internal sealed partial class DeviceEventLoop
{
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
