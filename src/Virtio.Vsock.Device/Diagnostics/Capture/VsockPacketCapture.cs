namespace Virtio.Vsock.Device.Diagnostics.Capture;

/// <summary>
/// Packet capture of one device as a pcap file with link type <c>LINKTYPE_VSOCK</c> (271), the format of Linux's
/// <c>vsockmon</c> that Wireshark and tshark dissect. Set as a device's <see cref="VsockDevice.PacketTap"/>; each
/// packet's headers and its payload up to <see cref="SnapLength"/> bytes are copied into a bounded ring buffer on
/// the device loop, and a writer thread of its own writes them to the file.
/// </summary>
/// <remarks>
/// <para>Owns the ring, the writer thread and the output stream. The device loop never waits for the file and
/// the ring never grows: a packet that does not fit (the disk is slower than the traffic) is dropped and counted
/// in <see cref="Dropped"/>. A write error stops the capture (everything after it is counted as dropped, and
/// <see cref="Error"/> says why); the device is never affected.</para>
/// <para><b>Must never:</b> block or allocate in <see cref="OnPacket"/>, or hold a reference to a packet.</para>
/// </remarks>
public sealed class VsockPacketCapture : IVsockPacketTap, IDisposable
{
    /// <summary>The default <see cref="SnapLength"/>: whole packets (the device's largest payload is 64 KiB).</summary>
    public const int DefaultSnapLength = 64 * 1024;

    /// <summary>The default ring size: 4 MiB.</summary>
    public const int DefaultRingBytes = 4 * 1024 * 1024;

    private readonly byte[] _ring;
    private readonly int _mask;
    private readonly Stream _output;
    private readonly Thread _writer;
    private readonly ManualResetEventSlim _wake = new(false);
    private long _head;
    private long _tail;
    private int _writerWaiting;
    private volatile bool _stopping;
    private volatile bool _failed;
    private long _captured;
    private long _dropped;
    private bool _disposed;

    /// <summary>Starts a capture into <paramref name="output"/> (the pcap file header is written at once).</summary>
    /// <param name="output">Where the pcap bytes go; owned (disposed) by the capture.</param>
    /// <param name="snapLength">The most payload bytes kept per packet (0 to 16 MiB).</param>
    /// <param name="ringBytes">The ring size, rounded up to a power of two; at least one largest record.</param>
    public VsockPacketCapture(Stream output, int snapLength = DefaultSnapLength, int ringBytes = DefaultRingBytes)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfNegative(snapLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(snapLength, 16 * 1024 * 1024);
        int capacity = (int)Math.Min(1 << 30, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(ringBytes, 2 * (VsockMonRecord.PrefixSize + snapLength))));
        _ring = new byte[capacity];
        _mask = capacity - 1;
        _output = output;
        SnapLength = snapLength;
        Span<byte> fileHeader = stackalloc byte[VsockMonRecord.FileHeaderSize];
        VsockMonRecord.WriteFileHeader(fileHeader, (uint)(VsockMonRecord.MonitorHeaderSize + VsockHeader.Size + snapLength));
        _output.Write(fileHeader);
        _output.Flush();
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "vsock-capture" };
        _writer.Start();
    }

    /// <summary>The most payload bytes kept per packet.</summary>
    public int SnapLength { get; }

    /// <summary>Packets copied into the ring.</summary>
    public long Captured => Interlocked.Read(ref _captured);

    /// <summary>Packets dropped: the ring was full, the capture stopped or the file failed.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Why writing failed, or <see langword="null"/>.</summary>
    public string? Error { get; private set; }

    /// <summary>Creates (or truncates) a pcap file readable by its owner only (mode 0600) and captures into it.</summary>
    /// <param name="path">The file.</param>
    /// <param name="snapLength">The most payload bytes kept per packet.</param>
    /// <returns>The running capture.</returns>
    public static VsockPacketCapture CreateFile(string path, int snapLength = DefaultSnapLength)
    {
        var options = new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            Share = FileShare.Read,
            BufferSize = 64 * 1024,
        };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        return new VsockPacketCapture(new FileStream(path, options), snapLength);
    }

    /// <inheritdoc/>
    public void OnPacket(VsockPacket packet, bool fromGuest)
    {
        if (_stopping || _failed)
        {
            Interlocked.Increment(ref _dropped);
            return;
        }

        VsockHeader header = packet.Header;
        uint original = header.Op == VsockOp.Rw ? header.Len : 0;
        int payload = (int)Math.Min(Math.Min(original, (uint)SnapLength), (uint)Math.Max(0, packet.DataCapacity));
        int size = VsockMonRecord.PrefixSize + payload;
        long tail = _tail;
        if (_ring.Length - (tail - Volatile.Read(ref _head)) < size)
        {
            Interlocked.Increment(ref _dropped);
            return;
        }

        long micros = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;
        Span<byte> prefix = stackalloc byte[VsockMonRecord.PrefixSize];
        VsockMonRecord.WritePrefix(prefix, header, payload, original, micros);
        int offset = (int)(tail & _mask);
        int first = Math.Min(prefix.Length, _ring.Length - offset);
        prefix[..first].CopyTo(_ring.AsSpan(offset));
        prefix[first..].CopyTo(_ring);
        if (payload > 0)
        {
            offset = (int)((tail + VsockMonRecord.PrefixSize) & _mask);
            first = Math.Min(payload, _ring.Length - offset);
            if (packet.CopyDataTo(_ring.AsSpan(offset, first)).IsError
                || (payload > first && packet.CopyDataTo(_ring.AsSpan(0, payload - first), first).IsError))
            {
                _ring.AsSpan(offset, first).Clear();
            }
        }

        Interlocked.Exchange(ref _tail, tail + size);
        Interlocked.Increment(ref _captured);
        if (Volatile.Read(ref _writerWaiting) != 0)
        {
            _wake.Set();
        }
    }

    /// <summary>Stops the capture: writes what the ring holds, flushes and closes the file. Detach it from the device first.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _stopping = true;
        _wake.Set();
        _writer.Join();
        _wake.Dispose();
    }

    private void WriteLoop()
    {
        try
        {
            while (true)
            {
                long tail = Interlocked.Read(ref _tail);
                long head = _head;
                if (tail == head)
                {
                    if (_stopping)
                    {
                        break;
                    }

                    _output.Flush();
                    _wake.Reset();
                    Interlocked.Exchange(ref _writerWaiting, 1);
                    if (Interlocked.Read(ref _tail) == head && !_stopping)
                    {
                        _wake.Wait(TimeSpan.FromMilliseconds(500));
                    }

                    Interlocked.Exchange(ref _writerWaiting, 0);
                    continue;
                }

                int offset = (int)(head & _mask);
                int count = (int)Math.Min(tail - head, _ring.Length - offset);
                _output.Write(_ring, offset, count);
                Volatile.Write(ref _head, head + count);
            }

            _output.Flush();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException or NotSupportedException)
        {
            Error = ex.Message;
            _failed = true;
        }
        finally
        {
            try
            {
                _output.Dispose();
            }
            catch (IOException ex)
            {
                Error ??= ex.Message;
            }
        }
    }
}
