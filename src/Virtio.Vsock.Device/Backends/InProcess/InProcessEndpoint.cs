namespace Virtio.Vsock.Device.Backends.InProcess;

/// <summary>
/// The host side of one in-process connection: two bounded rings (guest to host, host to guest) shared by
/// the device loop (through <see cref="IVsockEndpoint"/>) and the application (through <see cref="VsockStream"/>).
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> the rings, the half-close and close flags of both sides, and the application's waiters.
/// <b>Must never:</b> block the device loop (device-side calls only copy under a short lock and return
/// <see cref="EndpointStatus.WouldBlock"/> when a ring is full or empty), grow past its capacities (the
/// application's writes wait for room: that is the backpressure), or call device events under its lock.</para>
/// </remarks>
internal sealed class InProcessEndpoint : IVsockEndpoint
{
    private const int MaxMessages = 1024;

    private readonly object _lock = new();
    private readonly ByteRing _toHost;
    private readonly ByteRing _toGuest;
    private readonly bool _seqPacket;
    private IVsockEndpointEvents? _events;
    private bool _wantReadable;
    private bool _wantWritable;
    private bool _guestSendShut;
    private bool _guestReceiveShut;
    private bool _hostSendShut;
    private bool _hostClosed;
    private bool _deviceClosed;
    private bool _aborted;
    private TaskCompletionSource? _readWaiter;
    private TaskCompletionSource? _writeWaiter;

    /// <summary>Creates an endpoint.</summary>
    /// <param name="type">Stream or seqpacket.</param>
    /// <param name="capacity">Bytes each direction buffers.</param>
    public InProcessEndpoint(VsockType type, int capacity)
    {
        _seqPacket = type == VsockType.SeqPacket;
        _toHost = new ByteRing(capacity);
        _toGuest = new ByteRing(capacity);
    }

    /// <summary>Whether the device connection is over.</summary>
    public bool IsClosedByDevice
    {
        get
        {
            lock (_lock)
            {
                return _deviceClosed || _aborted;
            }
        }
    }

    // ---------------------------------------------------------------- device side

    /// <inheritdoc/>
    public void Start(IVsockEndpointEvents events)
    {
        lock (_lock)
        {
            _events = events;
        }
    }

    /// <inheritdoc/>
    public EndpointResult Write(VsockPacket packet, int offset, SeqPacketFlags boundary)
    {
        TaskCompletionSource? wake;
        int total;
        lock (_lock)
        {
            if (_hostClosed)
            {
                return EndpointResult.Closed;
            }

            int remaining = (int)packet.Len - offset;
            if ((remaining > 0 && _toHost.Free == 0) || (_seqPacket && _toHost.BoundaryCount >= MaxMessages))
            {
                return EndpointResult.WouldBlock;
            }

            _toHost.GetWritable(remaining, out Span<byte> first, out Span<byte> second);
            if (packet.CopyDataTo(first, offset).IsError || packet.CopyDataTo(second, offset + first.Length).IsError)
            {
                return EndpointResult.Error;
            }

            total = first.Length + second.Length;
            _toHost.CommitWrite(total);
            if (_seqPacket && total == remaining && boundary != SeqPacketFlags.None)
            {
                _toHost.AddBoundary(boundary);
            }

            wake = TakeReadWaiter();
        }

        wake?.TrySetResult();
        return EndpointResult.Ok(total);
    }

    /// <inheritdoc/>
    public EndpointResult Write(ReadOnlySpan<byte> data, SeqPacketFlags boundary)
    {
        TaskCompletionSource? wake;
        int total;
        lock (_lock)
        {
            if (_hostClosed)
            {
                return EndpointResult.Closed;
            }

            if ((data.Length > 0 && _toHost.Free == 0) || (_seqPacket && _toHost.BoundaryCount >= MaxMessages))
            {
                return EndpointResult.WouldBlock;
            }

            total = _toHost.Write(data);
            if (_seqPacket && total == data.Length && boundary != SeqPacketFlags.None)
            {
                _toHost.AddBoundary(boundary);
            }

            wake = TakeReadWaiter();
        }

        wake?.TrySetResult();
        return EndpointResult.Ok(total);
    }

    /// <inheritdoc/>
    public EndpointResult Read(VsockPacket packet, int maxBytes)
    {
        TaskCompletionSource? wake;
        int count;
        SeqPacketFlags flags;
        lock (_lock)
        {
            if (!_toGuest.HasData)
            {
                return _hostClosed ? EndpointResult.Closed : _hostSendShut ? EndpointResult.EndOfStream : EndpointResult.WouldBlock;
            }

            int limit = _seqPacket ? Math.Min(maxBytes, _toGuest.ReadableUntilBoundary) : maxBytes;
            _toGuest.GetReadable(limit, out Span<byte> first, out Span<byte> second);
            if (packet.CopyDataFrom(first).IsError || packet.CopyDataFrom(second, first.Length).IsError)
            {
                return EndpointResult.Error;
            }

            count = first.Length + second.Length;
            flags = _toGuest.CommitRead(count);
            if (!_seqPacket)
            {
                flags = SeqPacketFlags.None;
            }

            wake = TakeWriteWaiter();
        }

        wake?.TrySetResult();
        return EndpointResult.Ok(count, flags);
    }

    /// <inheritdoc/>
    public void RequestReadable()
    {
        IVsockEndpointEvents? events;
        lock (_lock)
        {
            if (!(_toGuest.HasData || _hostSendShut || _hostClosed))
            {
                _wantReadable = true;
                return;
            }

            events = _events;
        }

        events?.Readable();
    }

    /// <inheritdoc/>
    public void RequestWritable()
    {
        IVsockEndpointEvents? events;
        lock (_lock)
        {
            if (!(_toHost.Free > 0 || _hostClosed))
            {
                _wantWritable = true;
                return;
            }

            events = _events;
        }

        events?.Writable();
    }

    /// <inheritdoc/>
    public void ShutdownSend()
    {
        TaskCompletionSource? wake;
        lock (_lock)
        {
            _guestSendShut = true;
            wake = TakeReadWaiter();
        }

        wake?.TrySetResult();
    }

    /// <inheritdoc/>
    /// <remarks>Drops what the application wrote and the guest will never read; the application's writes (and a
    /// write waiting for room) fail with <see cref="IOException"/>, as a Unix socket's send fails with EPIPE.</remarks>
    public void ShutdownReceive()
    {
        TaskCompletionSource? wake;
        lock (_lock)
        {
            _guestReceiveShut = true;
            _toGuest.Clear();
            wake = TakeWriteWaiter();
        }

        wake?.TrySetResult();
    }

    /// <inheritdoc/>
    public void Close(bool abort)
    {
        TaskCompletionSource? read;
        TaskCompletionSource? write;
        lock (_lock)
        {
            if (abort)
            {
                _aborted = true;
            }
            else
            {
                _deviceClosed = true;
                _guestSendShut = true;
            }

            _events = null;
            read = TakeReadWaiter();
            write = TakeWriteWaiter();
        }

        read?.TrySetResult();
        write?.TrySetResult();
    }

    // ---------------------------------------------------------------- application side

    /// <summary>Reads guest data for the application; 0 = the guest shut down sending (or closed).</summary>
    /// <param name="destination">Where the bytes go.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>Bytes read and the message-end flags (SEQPACKET).</returns>
    public async ValueTask<(int Count, SeqPacketFlags Flags)> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task waitTask;
            IVsockEndpointEvents? events = null;
            int count = 0;
            SeqPacketFlags flags = SeqPacketFlags.None;
            bool done = false;
            lock (_lock)
            {
                if (_aborted)
                {
                    throw new IOException("The vsock connection was reset.");
                }

                if (_toHost.HasData)
                {
                    int limit = _seqPacket ? Math.Min(destination.Length, _toHost.ReadableUntilBoundary) : destination.Length;
                    _toHost.GetReadable(limit, out Span<byte> first, out Span<byte> second);
                    first.CopyTo(destination.Span);
                    second.CopyTo(destination.Span[first.Length..]);
                    count = first.Length + second.Length;
                    flags = _toHost.CommitRead(count);
                    if (_wantWritable && (count > 0 || flags != SeqPacketFlags.None))
                    {
                        _wantWritable = false;
                        events = _events;
                    }

                    done = true;
                }
                else if (_guestSendShut || _deviceClosed || _hostClosed)
                {
                    done = true;
                }

                if (done)
                {
                    waitTask = Task.CompletedTask;
                }
                else
                {
                    _readWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    waitTask = _readWaiter.Task;
                }
            }

            if (done)
            {
                events?.Writable();
                return (count, _seqPacket ? flags : SeqPacketFlags.None);
            }

            await waitTask.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Writes application data for the guest, waiting for room; in SEQPACKET mode the call is one message.</summary>
    /// <param name="source">The bytes.</param>
    /// <param name="endOfRecord">SEQPACKET: mark the message as ending a record (MSG_EOR).</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>A task.</returns>
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> source, bool endOfRecord, CancellationToken cancellationToken)
    {
        int offset = 0;
        while (true)
        {
            Task? waitTask = null;
            IVsockEndpointEvents? events = null;
            bool done;
            lock (_lock)
            {
                if (_aborted || _deviceClosed)
                {
                    throw new IOException("The vsock connection is closed.");
                }

                if (_hostSendShut || _hostClosed)
                {
                    throw new InvalidOperationException("Writes were completed on this vsock stream.");
                }

                if (_guestReceiveShut)
                {
                    throw new IOException("The guest shut down reading on this vsock connection (EPIPE).");
                }

                int written = offset < source.Length ? _toGuest.Write(source.Span[offset..]) : 0;
                offset += written;
                done = offset == source.Length;
                bool boundary = false;
                if (done && _seqPacket)
                {
                    if (_toGuest.BoundaryCount < MaxMessages)
                    {
                        _toGuest.AddBoundary(endOfRecord ? SeqPacketFlags.EndOfMessage | SeqPacketFlags.EndOfRecord : SeqPacketFlags.EndOfMessage);
                        boundary = true;
                    }
                    else
                    {
                        done = false;
                    }
                }

                if (_wantReadable && (written > 0 || boundary))
                {
                    _wantReadable = false;
                    events = _events;
                }

                if (!done)
                {
                    _writeWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    waitTask = _writeWaiter.Task;
                }
            }

            events?.Readable();
            if (done)
            {
                return;
            }

            await waitTask!.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The application will send no more (the guest gets SHUTDOWN(SEND) after the data).</summary>
    public void CompleteWrites()
    {
        IVsockEndpointEvents? events;
        lock (_lock)
        {
            _hostSendShut = true;
            events = TakeReadableWanted();
        }

        events?.Readable();
    }

    /// <summary>The application closed the stream: unread guest data is dropped, written data still goes out.</summary>
    public void CloseFromHost()
    {
        IVsockEndpointEvents? readable;
        IVsockEndpointEvents? writable = null;
        lock (_lock)
        {
            _hostClosed = true;
            _hostSendShut = true;
            _toHost.Clear();
            readable = TakeReadableWanted();
            if (_wantWritable)
            {
                _wantWritable = false;
                writable = _events;
            }
        }

        readable?.Readable();
        writable?.Writable();
    }

    private IVsockEndpointEvents? TakeReadableWanted()
    {
        if (_wantReadable)
        {
            _wantReadable = false;
            return _events;
        }

        return null;
    }

    private TaskCompletionSource? TakeReadWaiter()
    {
        TaskCompletionSource? waiter = _readWaiter;
        _readWaiter = null;
        return waiter;
    }

    private TaskCompletionSource? TakeWriteWaiter()
    {
        TaskCompletionSource? waiter = _writeWaiter;
        _writeWaiter = null;
        return waiter;
    }
}
