namespace Virtio.Vsock.Device;

/// <summary>
/// The <see cref="IVsockConnectCompletion"/> behind <see cref="IVsockBackendHost.ConnectAsync"/>: completes a task
/// whose continuations run asynchronously (never on the device loop).
/// </summary>
internal sealed class TaskConnectCompletion : IVsockConnectCompletion
{
    private readonly TaskCompletionSource<uint> _source = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The task: the local port, or the failure.</summary>
    public Task<uint> Task => _source.Task;

    /// <inheritdoc/>
    public void OnConnected(uint localPort) => _source.TrySetResult(localPort);

    /// <inheritdoc/>
    public void OnFailed(Exception error)
    {
        if (error is OperationCanceledException canceled)
        {
            _source.TrySetCanceled(canceled.CancellationToken);
        }
        else
        {
            _source.TrySetException(error);
        }
    }
}
