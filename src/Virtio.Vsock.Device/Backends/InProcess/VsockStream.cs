namespace Virtio.Vsock.Device.Backends.InProcess;

/// <summary>
/// One in-process vsock connection as a <see cref="Stream"/>: reads return what the guest sent (0 once the
/// guest shut down sending), writes wait while the guest's side is full (backpressure) and fail with
/// <see cref="IOException"/> once the guest shut down reading (what it had not read is dropped).
/// <see cref="CompleteWrites"/> half-closes (the guest reads EOF and can still send); <see cref="Stream.Dispose()"/>
/// closes both ways after the written data.
/// </summary>
/// <remarks>
/// For SEQPACKET connections each <see cref="WriteAsync(ReadOnlyMemory{byte}, CancellationToken)"/> is one
/// message, and a read never crosses a message end: <see cref="LastReadFlags"/> says whether it reached one.
/// A message larger than the read buffer is returned over several reads (nothing is truncated).
/// </remarks>
public sealed class VsockStream : Stream
{
    private readonly InProcessEndpoint _endpoint;
    private int _disposed;

    internal VsockStream(InProcessEndpoint endpoint, VsockType type, uint localPort, ulong remoteCid, uint remotePort)
    {
        _endpoint = endpoint;
        Type = type;
        LocalPort = localPort;
        RemoteCid = remoteCid;
        RemotePort = remotePort;
    }

    /// <summary>Stream or seqpacket.</summary>
    public VsockType Type { get; }

    /// <summary>The host-side port.</summary>
    public uint LocalPort { get; internal set; }

    /// <summary>The guest's CID.</summary>
    public ulong RemoteCid { get; }

    /// <summary>The guest-side port.</summary>
    public uint RemotePort { get; }

    /// <summary>SEQPACKET: the message-end flags the last read reached (none when the message continues).</summary>
    public SeqPacketFlags LastReadFlags { get; private set; }

    /// <summary>Whether the connection ended on the device side (guest closed or reset, device reset).</summary>
    public bool IsClosedByPeer => _endpoint.IsClosedByDevice;

    /// <inheritdoc/>
    public override bool CanRead => true;

    /// <inheritdoc/>
    public override bool CanWrite => true;

    /// <inheritdoc/>
    public override bool CanSeek => false;

    /// <inheritdoc/>
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc/>
    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <inheritdoc/>
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        (int count, SeqPacketFlags flags) = await _endpoint.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        LastReadFlags = flags;
        return count;
    }

    /// <inheritdoc/>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) =>
        ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    /// <inheritdoc/>
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        _endpoint.WriteAsync(buffer, endOfRecord: false, cancellationToken);

    /// <summary>SEQPACKET: writes one message, optionally ending a record (MSG_EOR).</summary>
    /// <param name="message">The message.</param>
    /// <param name="endOfRecord">Whether the message ends a record.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    /// <returns>A task.</returns>
    public ValueTask WriteMessageAsync(ReadOnlyMemory<byte> message, bool endOfRecord, CancellationToken cancellationToken = default) =>
        _endpoint.WriteAsync(message, endOfRecord, cancellationToken);

    /// <inheritdoc/>
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count) =>
        WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    /// <summary>Half-close: the guest reads end of stream after the data written so far, and can still send.</summary>
    public void CompleteWrites() => _endpoint.CompleteWrites();

    /// <inheritdoc/>
    public override void Flush()
    {
    }

    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _endpoint.CloseFromHost();
        }

        base.Dispose(disposing);
    }
}
