namespace Virtio.Vsock.Device;

/// <summary>What a device offers its backend: connecting to a port in the guest.</summary>
public interface IVsockBackendHost
{
    /// <summary>The guest's CID.</summary>
    ulong GuestCid { get; }

    /// <summary>
    /// The device's loop as a poller for host descriptors: a backend that carries connections over sockets watches
    /// them here, so their readiness is handled by the thread that runs the device (no thread of its own).
    /// </summary>
    IVsockFdPoller FdPoller { get; }

    /// <summary>
    /// Opens a connection from the host to <paramref name="guestPort"/> in the guest: sends REQUEST and completes
    /// when the guest answers RESPONSE, after which <paramref name="endpoint"/> is started and carries the data.
    /// </summary>
    /// <param name="guestPort">The guest port.</param>
    /// <param name="type">Stream or seqpacket.</param>
    /// <param name="endpoint">The host side of the new connection; closed (aborted) when the connect fails.</param>
    /// <param name="cancellationToken">Cancels the attempt (the guest gets RST).</param>
    /// <returns>The host-side (source) port of the connection.</returns>
    /// <exception cref="VsockConnectException">Refused by the guest (RST), timed out, no resources, or the device is not running.</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    Task<uint> ConnectAsync(uint guestPort, VsockType type, IVsockEndpoint endpoint, CancellationToken cancellationToken);

    /// <summary>
    /// <see cref="ConnectAsync"/> for a backend that lives on the device loop: the outcome is handed to
    /// <paramref name="completion"/> on the loop thread itself (no task, no thread-pool hop), so the backend can answer
    /// its host peer there. Default: <see cref="ConnectAsync"/>, with <paramref name="completion"/> called from the
    /// task's continuation (a thread-pool thread).
    /// </summary>
    /// <param name="guestPort">The guest port.</param>
    /// <param name="type">Stream or seqpacket.</param>
    /// <param name="endpoint">The host side of the new connection; closed (aborted) when the connect fails.</param>
    /// <param name="completion">Told the outcome, once. A cancelled attempt is an <see cref="OperationCanceledException"/>
    /// carrying <paramref name="cancellationToken"/> (when that token asked for it; otherwise the token the task was
    /// cancelled with).</param>
    /// <param name="cancellationToken">Cancels the attempt (the guest gets RST).</param>
    void Connect(uint guestPort, VsockType type, IVsockEndpoint endpoint, IVsockConnectCompletion completion, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(completion);
        ConnectAsync(guestPort, type, endpoint, cancellationToken).ContinueWith(
            static (task, state) =>
            {
                (IVsockConnectCompletion target, CancellationToken token) = ((IVsockConnectCompletion, CancellationToken))state!;
                if (task.IsCompletedSuccessfully)
                {
                    target.OnConnected(task.Result);
                }
                else if (task.IsCanceled)
                {
                    // As the device's own path: the caller's token when it was the caller who cancelled.
                    target.OnFailed(token.IsCancellationRequested ? new OperationCanceledException(token) : new TaskCanceledException(task));
                }
                else
                {
                    target.OnFailed(task.Exception!.InnerException!);
                }
            },
            (completion, cancellationToken),
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }
}
