namespace Virtio.Vsock.Backends.Unix;

/// <summary>
/// Host-initiated connections of the <see cref="UnixSocketBackend"/>: requests whose <c>CONNECT</c> line the listeners
/// read go to the device's connect, at most <see cref="UnixSocketBackendOptions.MaxPendingHostConnects"/> at once, and
/// the guest's answer becomes the <c>OK &lt;port&gt;\n</c> reply or a close. Owns the host-connect slots. Must never
/// wait for a slot (a request that finds none stays in its listener's bounded queue, and the connect that frees a
/// slot takes it) or let one failing connection affect another.
/// </summary>
public sealed partial class UnixSocketBackend
{
    /// <summary>Hands the listeners to the device's loop (under <c>_lock</c>).</summary>
    private void AttachListeners(IVsockFdPoller loop)
    {
        _streamListener?.Attach(loop);
        _seqPacketListener?.Attach(loop);
    }

    /// <summary>
    /// Starts host connects for queued requests while fewer than <see cref="UnixSocketBackendOptions.MaxPendingHostConnects"/>
    /// are waiting for the guest (both listeners share the bound and take turns). Called on the device loop when a
    /// handshake completes, and wherever a connect finishes (its slot is free). A request that finds no slot stays in
    /// its listener's bounded queue; whoever frees the next slot takes it (the re-check after giving a slot back
    /// closes the race with a request queued meanwhile).
    /// </summary>
    private void PumpHostConnects()
    {
        // Pairs with the fence of the slot release below (Interlocked): a request queued while every slot was taken is
        // seen either by the producer's pump or by the releaser's re-check.
        Interlocked.MemoryBarrier();
        while (true)
        {
            int pending = Volatile.Read(ref _pendingHostConnects);
            if (pending >= _options.MaxPendingHostConnects)
            {
                return;
            }

            if (Interlocked.CompareExchange(ref _pendingHostConnects, pending + 1, pending) != pending)
            {
                continue;
            }

            if (TakeRequest(out HostConnectRequest? request))
            {
                StartHostConnect(request);
                continue;
            }

            Interlocked.Decrement(ref _pendingHostConnects);
            if (!(_streamListener?.HasQueued ?? false) && !(_seqPacketListener?.HasQueued ?? false))
            {
                return;
            }
        }
    }

    private bool TakeRequest([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out HostConnectRequest? request)
    {
        HybridVsockListener? first = _streamListener;
        HybridVsockListener? second = _seqPacketListener;
        if (Volatile.Read(ref _takeSeqPacketFirst))
        {
            (first, second) = (second, first);
        }

        request = null;
        if (first?.TryTake(out request) == true || second?.TryTake(out request) == true)
        {
            Volatile.Write(ref _takeSeqPacketFirst, request!.Type == VsockType.Stream);
            return true;
        }

        return false;
    }

    /// <summary>
    /// Checks the access rules, wraps the socket in an endpoint watched by the device loop and asks the device to
    /// connect (normally on the loop, from <see cref="PumpHostConnects"/>: the device queues the REQUEST in the same
    /// turn). The caller took a host-connect slot; <see cref="FinishHostConnect"/> gives it back.
    /// </summary>
    private void StartHostConnect(HostConnectRequest request)
    {
        Interlocked.Increment(ref _inFlight);
        UnixSocketEndpoint? endpoint = null;
        try
        {
            if (_options.Access is { } access
                && Access.PeerCredentials.Of(request.Socket) is var peer
                && !access.AllowsHostConnect(request.Port, peer))
            {
                // Denied: closed without "OK", as when the guest does not listen on the port.
                Interlocked.Increment(ref _hostConnectsDenied);
                request.Reject();
                Interlocked.Increment(ref _hostConnectsFailed);
                if (_logger is not null)
                {
                    LogHostConnectDenied(_logger, request.Port, peer?.Uid ?? uint.MaxValue, peer?.Gid ?? uint.MaxValue, peer?.Pid ?? 0);
                }

                FinishHostConnect();
                return;
            }

            IVsockBackendHost? host = Volatile.Read(ref _host);
            endpoint = host is null ? null : CreateEndpoint(request.Socket, request.Type, request.InitialData, replyPending: true);
            if (host is null || endpoint is null)
            {
                request.Reject();
                Interlocked.Increment(ref _hostConnectsFailed);
                FinishHostConnect();
                return;
            }

            // The device tells the outcome on its loop (the device's own host does; another host from a thread-pool
            // thread): the reply is one non-blocking send and the endpoint's release, no thread hop.
            host.Connect(request.Port, request.Type, endpoint, new HostConnect(this, request, endpoint), _stop.Token);
        }
        catch (Exception e)
        {
            // Nothing above should throw; one host connection must never take the backend down.
            endpoint?.Kill();
            request.Reject();
            Interlocked.Increment(ref _hostConnectsFailed);
            if (_logger is not null)
            {
                LogUnexpected(_logger, e);
            }

            FinishHostConnect();
        }
    }

    /// <summary>The guest answered (or the connect failed): send <c>OK &lt;port&gt;\n</c> or close, then free the slot.</summary>
    /// <param name="request">The host's request.</param>
    /// <param name="endpoint">Its endpoint.</param>
    /// <param name="localPort">The connection's host-side port, when it succeeded.</param>
    /// <param name="e">Why it failed, or <see langword="null"/> when it succeeded.</param>
    private void OnHostConnected(HostConnectRequest request, UnixSocketEndpoint endpoint, uint localPort, Exception? e)
    {
        try
        {
            if (e is not null)
            {
                // Refused (RST), timed out, no resources, not running, reset, or cancelled by DisposeAsync.
                endpoint.Close(abort: true);
                endpoint.CompleteReply(sent: false);
                request.Reject();
                Interlocked.Increment(ref _hostConnectsFailed);
                if (_logger is not null)
                {
                    LogHostConnectFailed(_logger, request.Port, request.Type, e is VsockConnectException failure ? failure.Reason.ToString() : e is OperationCanceledException ? "canceled" : e.GetType().Name);
                }

                return;
            }

            UnixIoResult reply = request.Accept(localPort);
            endpoint.CompleteReply(reply.IsOk);
            if (reply.IsOk)
            {
                Interlocked.Increment(ref _hostConnects);
            }
            else
            {
                Interlocked.Increment(ref _hostConnectsFailed);
                if (_logger is not null)
                {
                    LogHostConnectFailed(_logger, request.Port, request.Type, "reply not sent: " + reply);
                }
            }
        }
        catch (Exception unexpected)
        {
            // Nothing above should throw; one host connection must never take the backend (or the loop) down.
            endpoint.Kill();
            request.Reject();
            Interlocked.Increment(ref _hostConnectsFailed);
            if (_logger is not null)
            {
                LogUnexpected(_logger, unexpected);
            }
        }
        finally
        {
            FinishHostConnect();
        }
    }

    /// <summary>A host connect ended: free its slot and start the next queued one, if any.</summary>
    private void FinishHostConnect()
    {
        Interlocked.Decrement(ref _pendingHostConnects);
        Interlocked.Decrement(ref _inFlight);
        if (Volatile.Read(ref _state) == Running)
        {
            PumpHostConnects();
        }
    }

    /// <summary>A host connect waiting for the guest: the request (the reply goes there) and its endpoint; told the outcome once.</summary>
    private sealed class HostConnect(UnixSocketBackend owner, HostConnectRequest request, UnixSocketEndpoint endpoint) : IVsockConnectCompletion
    {
        /// <inheritdoc/>
        public void OnConnected(uint localPort) => owner.OnHostConnected(request, endpoint, localPort, null);

        /// <inheritdoc/>
        public void OnFailed(Exception error) => owner.OnHostConnected(request, endpoint, 0, error);
    }
}
