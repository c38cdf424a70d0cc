namespace Virtio.Vsock.Testing;

/// <summary>
/// The guest's socket layer, as Linux's af_vsock behaves: connecting, listening, the table of live
/// sockets and where a received packet goes (a socket, a listener, or an RST back). It owns the socket
/// and listener tables; it must never touch the rings or guest memory (the driver thread does that) and
/// never change the tables outside <c>Sync</c>.
/// </summary>
public sealed partial class GuestSimulator
{
    /// <summary>Connects to <paramref name="hostPort"/> on the host (CID 2).</summary>
    /// <param name="hostPort">The host port.</param>
    /// <param name="type">Stream or seqpacket.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>The connected socket.</returns>
    /// <exception cref="GuestSocketException">Refused (RST) or timed out.</exception>
    public Task<GuestSocket> ConnectAsync(uint hostPort, VsockType type = VsockType.Stream, CancellationToken cancellationToken = default) =>
        ConnectToAsync(VsockCid.Host, hostPort, type, cancellationToken);

    /// <summary>Connects to <paramref name="port"/> at <paramref name="cid"/>: the host (2) or a sibling guest.</summary>
    /// <param name="cid">The peer's CID.</param>
    /// <param name="port">The peer's port.</param>
    /// <param name="type">Stream or seqpacket.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>The connected socket.</returns>
    /// <exception cref="GuestSocketException">Refused (RST) or timed out.</exception>
    public async Task<GuestSocket> ConnectToAsync(ulong cid, uint port, VsockType type = VsockType.Stream, CancellationToken cancellationToken = default)
    {
        GuestSocket socket;
        lock (Sync)
        {
            uint localPort;
            do
            {
                localPort = _nextPort++;
                if (_nextPort == 0)
                {
                    _nextPort = 49152;
                }
            }
            while (_sockets.ContainsKey((localPort, cid, port)));

            socket = new GuestSocket(this, type, localPort, cid, port, GuestSocketState.Connecting);
            _sockets.Add((localPort, cid, port), socket);
            socket.StartConnect();
            ScheduleTx(socket);
        }

        try
        {
            await socket.ConnectedTask.WaitAsync(Options.ConnectTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            lock (Sync)
            {
                socket.OnConnectTimeout();
            }

            throw new GuestSocketException($"Connect to {cid}:{port} timed out.");
        }

        return socket;
    }

    /// <summary>Listens on a guest port for connections from the host or from sibling guests.</summary>
    /// <param name="port">The guest port.</param>
    /// <param name="type">Stream or seqpacket.</param>
    /// <returns>The listener.</returns>
    public GuestListener Listen(uint port, VsockType type = VsockType.Stream)
    {
        var listener = new GuestListener(this, port, type);
        lock (Sync)
        {
            _listeners.Add((port, type), listener);
        }

        return listener;
    }

    /// <summary>Number of live guest sockets.</summary>
    public int SocketCount
    {
        get
        {
            lock (Sync)
            {
                return _sockets.Count;
            }
        }
    }

    // Socket bookkeeping, under Sync.

    internal void ScheduleTx(GuestSocket socket)
    {
        if (!socket.InTxQueue)
        {
            socket.InTxQueue = true;
            _txQueue.Enqueue(socket);
            _wake.Set();
        }
    }

    internal void Forget(GuestSocket socket)
    {
        if (_sockets.TryGetValue((socket.LocalPort, socket.PeerCid, socket.PeerPort), out GuestSocket? current) && ReferenceEquals(current, socket))
        {
            _sockets.Remove((socket.LocalPort, socket.PeerCid, socket.PeerPort));
        }
    }

    internal void RemoveListener(GuestListener listener)
    {
        lock (Sync)
        {
            _listeners.Remove((listener.Port, listener.Type));
        }
    }

    private void OnTransportReset()
    {
        // Linux: established connections are reset; listeners survive.
        foreach (GuestSocket socket in _sockets.Values.ToArray())
        {
            socket.Finish(reset: true);
        }
    }

    private void Dispatch(in VsockHeader header, ReadOnlySpan<byte> payload)
    {
        if (Options.LogReceived && ReceivedLog.Count < MaxLog)
        {
            ReceivedLog.Enqueue(header);
        }

        if (_rawPorts.Contains(header.DstPort))
        {
            RawReceived.Enqueue(header);
            return;
        }

        if (header.DstCid != GuestCid || (header.SrcCid != VsockCid.Host && !VsockCid.IsValidGuestCid(header.SrcCid)))
        {
            MisaddressedRxPackets++;
            return;
        }

        if (_sockets.TryGetValue((header.DstPort, header.SrcCid, header.SrcPort), out GuestSocket? socket))
        {
            socket.OnPacket(header, payload);
            return;
        }

        if (header.Op == VsockOp.Request && _listeners.TryGetValue((header.DstPort, header.Type), out GuestListener? listener))
        {
            socket = new GuestSocket(this, header.Type, header.DstPort, header.SrcCid, header.SrcPort, GuestSocketState.Connected);
            _sockets.Add((header.DstPort, header.SrcCid, header.SrcPort), socket);
            socket.StartAccepted(header);
            ScheduleTx(socket);
            listener.Deliver(socket);
            return;
        }

        if (header.Op != VsockOp.Rst)
        {
            _rawQueue.Enqueue((new VsockHeader
            {
                SrcCid = GuestCid,
                DstCid = header.SrcCid,
                SrcPort = header.DstPort,
                DstPort = header.SrcPort,
                Type = header.Type,
                Op = VsockOp.Rst,
            }, []));
        }
    }
}
