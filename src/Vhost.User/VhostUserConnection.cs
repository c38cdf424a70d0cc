using System.Buffers.Binary;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Virtio.Memory;

namespace Vhost.User;

/// <summary>
/// Serves one vhost-user frontend (for example QEMU) over a connected Unix stream socket: reads each
/// message with its SCM_RIGHTS descriptors, validates it, and drives an <see cref="IVhostUserBackend"/>.
/// </summary>
/// <remarks>
/// <para><b>Hostile input.</b> Every message is checked before it reaches the backend: header version and
/// flags, payload size (exact per request; more than <see cref="MaxPayloadSize"/> closes the connection
/// because framing can no longer be trusted), descriptor count (at most 8; descriptors a request does not
/// expect are closed), queue indices, queue sizes, ring alignment, addresses against the memory table,
/// memory file sizes. A refused message is logged with the reason and, when the frontend asked for a
/// reply (REPLY_ACK with NEED_REPLY, or a request whose reply is mandatory), answered with an error:
/// a non-zero u64, or a reply without payload where the reply carries data (the vhost-user convention
/// for GET_CONFIG, which QEMU treats as an error for every request). The connection then reads the next
/// message.</para>
/// <para><b>Threading.</b> <see cref="Run"/> is the control thread: it blocks until the frontend goes away
/// or <see cref="Stop"/> is called, then resets the backend and releases every descriptor and mapping.
/// Each started queue has its own kick thread (see <see cref="IVhostUserBackend"/>).</para>
/// </remarks>
public sealed class VhostUserConnection : IDisposable
{
    /// <summary>The protocol features this implementation can honour; a backend's other bits are not offered.</summary>
    public const VhostUserProtocolFeatures SupportedProtocolFeatures =
        VhostUserProtocolFeatures.Mq
        | VhostUserProtocolFeatures.ReplyAck
        | VhostUserProtocolFeatures.Config
        | VhostUserProtocolFeatures.ConfigureMemSlots
        | VhostUserProtocolFeatures.ResetDevice
        | VhostUserProtocolFeatures.Status;

    /// <summary>The number of memory regions accepted in total (the <c>GET_MAX_MEM_SLOTS</c> answer).</summary>
    public const int MaxMemorySlots = 32;

    /// <summary>The largest payload read at all; a larger size field closes the connection.</summary>
    public const int MaxPayloadSize = 4096;

    /// <summary><c>VHOST_USER_F_PROTOCOL_FEATURES</c>: virtio feature bit 30.</summary>
    public const ulong ProtocolFeaturesBit = 1UL << 30;

    internal const int HeaderSize = 12;
    internal const int MaxTableRegions = 8;
    internal const int MaxConfigSize = 256;
    internal const int MaxFdsPerMessage = 8;
    internal const uint VersionMask = 0x3;
    internal const uint Version = 0x1;
    internal const uint ReplyFlag = 0x4;
    internal const uint NeedReplyFlag = 0x8;
    internal const ulong VringIndexMask = 0xff;
    internal const ulong VringNoFdFlag = 0x100;

    private static readonly string[] RequestNames = BuildRequestNames();

    private readonly Socket _socket;
    private readonly SocketChannel _channel;
    private readonly IVhostUserBackend _backend;
    private readonly ILogger _logger;
    private bool _unsealedWarned;
    private readonly ulong _offeredFeatures;
    private readonly VhostUserProtocolFeatures _offeredProtocol;
    private readonly int _queueCount;
    private readonly ushort _maxQueueSize;
    private readonly VringState[] _vrings;
    private readonly byte[] _buffer = new byte[HeaderSize + MaxPayloadSize];
    private readonly List<SafeFileDescriptor?> _fds = new(MaxFdsPerMessage);
    private readonly List<MemorySlot> _slots = [];
    private GuestMemory? _memory;
    private ulong _ackedFeatures;
    private VhostUserProtocolFeatures _ackedProtocol;
    private ulong _status;
    private bool _owned;
    private string _currentRequest = string.Empty;
    private string? _closeReason;
    private int _runState;

    /// <summary>Creates a connection; call <see cref="Run"/> to serve it.</summary>
    /// <param name="socket">A connected Unix stream socket; the connection owns it from now on.</param>
    /// <param name="backend">The device.</param>
    /// <param name="logger">Where refusals and lifecycle events go; none when <see langword="null"/>.</param>
    /// <exception cref="ArgumentException">The backend reports an invalid queue count or queue size.</exception>
    /// <exception cref="IOException">No eventfd could be created.</exception>
    public VhostUserConnection(Socket socket, IVhostUserBackend backend, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(backend);
        ValidateBackend(backend);
        _socket = socket;
        _backend = backend;
        _logger = logger ?? NullLogger.Instance;
        _offeredFeatures = (backend.Features & ~ProtocolFeaturesBit) | ProtocolFeaturesBit;
        _offeredProtocol = backend.ProtocolFeatures & SupportedProtocolFeatures;
        _queueCount = backend.QueueCount;
        _maxQueueSize = backend.MaxQueueSize;
        _vrings = new VringState[_queueCount];
        for (int i = 0; i < _vrings.Length; i++)
        {
            _vrings[i] = new VringState();
        }

        _channel = new SocketChannel(socket.SafeHandle);
    }

    private bool ProtocolFeaturesNegotiated => (_ackedFeatures & ProtocolFeaturesBit) != 0;

    private bool ReplyAckNegotiated => (_ackedProtocol & VhostUserProtocolFeatures.ReplyAck) != 0;

    /// <summary>
    /// Serves the frontend on the calling thread until it disconnects, a framing error occurs, or
    /// <see cref="Stop"/> is called; then resets the backend, stops every kick thread, closes every
    /// descriptor, releases guest memory and closes the socket. Call at most once.
    /// </summary>
    /// <exception cref="InvalidOperationException">Called twice, or after <see cref="Dispose"/>.</exception>
    public void Run()
    {
        if (Interlocked.CompareExchange(ref _runState, 1, 0) != 0)
        {
            throw new InvalidOperationException("A vhost-user connection is served once.");
        }

        try
        {
            while (_closeReason is null)
            {
                ServeOneMessage();
            }
        }
        finally
        {
            Teardown(_closeReason ?? "connection aborted");
        }
    }

    /// <summary>Makes <see cref="Run"/> return soon (it still resets the backend). Thread-safe, idempotent.</summary>
    public void Stop() => _channel.RequestStop();

    /// <summary>Stops serving; releases everything at once when <see cref="Run"/> was never called.</summary>
    public void Dispose()
    {
        if (Interlocked.CompareExchange(ref _runState, 2, 0) == 0)
        {
            Teardown("disposed before serving");
        }
        else
        {
            Stop();
        }
    }

    internal static void ValidateBackend(IVhostUserBackend backend)
    {
        int queues = backend.QueueCount;
        if (queues < 1 || queues > 256)
        {
            throw new ArgumentException($"Backend queue count {queues} is outside 1..256.", nameof(backend));
        }

        ushort size = backend.MaxQueueSize;
        if (size == 0 || (size & (size - 1)) != 0 || size > 32768)
        {
            throw new ArgumentException($"Backend max queue size {size} is not a power of two in 1..32768.", nameof(backend));
        }
    }

    internal static string RequestName(uint request) =>
        request < RequestNames.Length ? RequestNames[request] : $"request {request}";

    private static string[] BuildRequestNames()
    {
        var names = new string[(int)VhostUserRequest.CheckDeviceState + 1];
        for (uint i = 0; i < names.Length; i++)
        {
            string name = ((VhostUserRequest)i).ToString();
            var builder = new System.Text.StringBuilder(name.Length + 8);
            for (int c = 0; c < name.Length; c++)
            {
                if (c > 0 && char.IsUpper(name[c]))
                {
                    builder.Append('_');
                }

                builder.Append(char.ToUpperInvariant(name[c]));
            }

            names[i] = builder.ToString();
        }

        return names;
    }

    /// <summary>Reads one message and handles it; sets <see cref="_closeReason"/> when the connection must end.</summary>
    private void ServeOneMessage()
    {
        bool fdsDropped = false;
        _fds.Clear();
        try
        {
            Span<byte> header = _buffer.AsSpan(0, HeaderSize);
            ChannelStatus status = _channel.ReceiveExact(header, _fds, MaxFdsPerMessage, ref fdsDropped);
            if (status != ChannelStatus.Ok)
            {
                _closeReason = Describe(status, "waiting for a message");
                return;
            }

            uint request = BinaryPrimitives.ReadUInt32LittleEndian(header);
            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
            uint size = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
            if (size > MaxPayloadSize)
            {
                Log.HeaderRefused(_logger, request, flags, size, $"payload size exceeds the {MaxPayloadSize}-byte limit; closing the connection");
                _closeReason = "oversized message";
                return;
            }

            Span<byte> payload = _buffer.AsSpan(HeaderSize, (int)size);
            status = _channel.ReceiveExact(payload, _fds, MaxFdsPerMessage, ref fdsDropped);
            if (status != ChannelStatus.Ok)
            {
                _closeReason = Describe(status, "reading a message payload");
                return;
            }

            if ((flags & VersionMask) != Version)
            {
                Log.HeaderRefused(_logger, request, flags, size, $"protocol version {flags & VersionMask}, expected {Version}");
                return;
            }

            if ((flags & ~(VersionMask | NeedReplyFlag)) != 0)
            {
                Log.HeaderRefused(_logger, request, flags, size, "reply flag or reserved flag bits set in a request");
                return;
            }

            Dispatch((VhostUserRequest)request, (flags & NeedReplyFlag) != 0, payload, fdsDropped);
        }
        finally
        {
            CloseUnusedFds();
        }
    }

    private void Dispatch(VhostUserRequest request, bool needReply, ReadOnlySpan<byte> payload, bool fdsDropped)
    {
        _currentRequest = RequestName((uint)request);
        Log.Received(_logger, _currentRequest, needReply ? Version | NeedReplyFlag : Version, (uint)payload.Length, _fds.Count);
        bool ok;
        if (fdsDropped)
        {
            ok = Refuse($"more than {MaxFdsPerMessage} descriptors attached (all closed)");
        }
        else
        {
            try
            {
                ok = Handle(request, payload);
            }
#pragma warning disable CA1031 // Any backend or mapping fault becomes a refusal; the daemon must survive hostile input.
            catch (Exception exception)
#pragma warning restore CA1031
            {
                Log.BackendFailed(_logger, _currentRequest, exception);
                ok = false;
            }
        }

        if (_closeReason is not null)
        {
            return;
        }

        switch (ReplyKindOf(request))
        {
            case ReplyKind.Data when !ok:
                SendReply(request, []);
                break;
            case ReplyKind.Status when !ok:
                ReplyU64(request, 1);
                break;
            case ReplyKind.None when needReply && ReplyAckNegotiated:
                ReplyU64(request, ok ? 0UL : 1UL);
                break;
        }
    }

    private static ReplyKind ReplyKindOf(VhostUserRequest request) => request switch
    {
        VhostUserRequest.GetFeatures or VhostUserRequest.GetProtocolFeatures or VhostUserRequest.GetVringBase
            or VhostUserRequest.GetQueueNum or VhostUserRequest.GetConfig or VhostUserRequest.GetMaxMemSlots
            or VhostUserRequest.GetStatus or VhostUserRequest.GetInflightFd or VhostUserRequest.CreateCryptoSession
            or VhostUserRequest.PostcopyAdvise or VhostUserRequest.GetSharedObject => ReplyKind.Data,
        VhostUserRequest.IotlbMsg or VhostUserRequest.PostcopyEnd or VhostUserRequest.SetDeviceStateFd
            or VhostUserRequest.CheckDeviceState => ReplyKind.Status,
        _ => ReplyKind.None,
    };

    private bool Handle(VhostUserRequest request, ReadOnlySpan<byte> payload)
    {
        switch (request)
        {
            case VhostUserRequest.GetFeatures:
                return ExpectSize(payload, 0) && ExpectNoFds() && ReplyU64(request, _offeredFeatures);
            case VhostUserRequest.SetFeatures:
                return HandleSetFeatures(payload);
            case VhostUserRequest.SetOwner:
                if (!ExpectSize(payload, 0) || !ExpectNoFds())
                {
                    return false;
                }

                if (_owned)
                {
                    Log.Trace(_logger, "SET_OWNER repeated by the same frontend");
                }

                _owned = true;
                return true;
            case VhostUserRequest.ResetOwner:
                if (!ExpectSize(payload, 0) || !ExpectNoFds())
                {
                    return false;
                }

                ResetDeviceState("RESET_OWNER");
                return true;
            case VhostUserRequest.SetMemTable:
                return HandleSetMemTable(payload);
            case VhostUserRequest.SetLogBase:
            case VhostUserRequest.SetLogFd:
                return Refuse("dirty-page logging is not supported (LOG_SHMFD is not offered)");
            case VhostUserRequest.SetVringNum:
                return HandleSetVringNum(payload);
            case VhostUserRequest.SetVringAddr:
                return HandleSetVringAddr(payload);
            case VhostUserRequest.SetVringBase:
                return HandleSetVringBase(payload);
            case VhostUserRequest.GetVringBase:
                return HandleGetVringBase(payload);
            case VhostUserRequest.SetVringKick:
            case VhostUserRequest.SetVringCall:
            case VhostUserRequest.SetVringErr:
                return HandleVringFd(request, payload);
            case VhostUserRequest.GetProtocolFeatures:
                return ExpectSize(payload, 0) && ExpectNoFds() && ReplyU64(request, (ulong)_offeredProtocol);
            case VhostUserRequest.SetProtocolFeatures:
                return HandleSetProtocolFeatures(payload);
            case VhostUserRequest.GetQueueNum:
                return ExpectSize(payload, 0) && ExpectNoFds() && ReplyU64(request, (ulong)_queueCount);
            case VhostUserRequest.SetVringEnable:
                return HandleSetVringEnable(payload);
            case VhostUserRequest.SetBackendReqFd:
                if (!ExpectSize(payload, 0) || !ExpectFds(1))
                {
                    return false;
                }

                Log.Trace(_logger, "SET_BACKEND_REQ_FD accepted; the backend channel is not used and its descriptor is closed");
                return true;
            case VhostUserRequest.GetConfig:
                return HandleGetConfig(payload);
            case VhostUserRequest.SetConfig:
                return HandleSetConfig(payload);
            case VhostUserRequest.ResetDevice:
                if (!RequireOffered(VhostUserProtocolFeatures.ResetDevice) || !ExpectSize(payload, 0) || !ExpectNoFds())
                {
                    return false;
                }

                ResetDeviceState("RESET_DEVICE");
                return true;
            case VhostUserRequest.GetMaxMemSlots:
                return RequireNegotiated(VhostUserProtocolFeatures.ConfigureMemSlots)
                    && ExpectSize(payload, 0) && ExpectNoFds() && ReplyU64(request, MaxMemorySlots);
            case VhostUserRequest.AddMemReg:
                return HandleAddMemReg(payload);
            case VhostUserRequest.RemMemReg:
                return HandleRemMemReg(payload);
            case VhostUserRequest.SetStatus:
                if (!RequireOffered(VhostUserProtocolFeatures.Status) || !ExpectSize(payload, 8) || !ExpectNoFds())
                {
                    return false;
                }

                ulong status = BinaryPrimitives.ReadUInt64LittleEndian(payload);
                if (status > 0xff)
                {
                    return Refuse($"device status 0x{status:x} does not fit the 8-bit status field");
                }

                _status = status;
                return true;
            case VhostUserRequest.GetStatus:
                return RequireOffered(VhostUserProtocolFeatures.Status) && ExpectSize(payload, 0) && ExpectNoFds()
                    && ReplyU64(request, _status);
            default:
                return Refuse(Enum.IsDefined(request) ? "not supported by this backend (feature not offered)" : "unknown request");
        }
    }

    private bool HandleSetFeatures(ReadOnlySpan<byte> payload)
    {
        if (!ExpectSize(payload, 8) || !ExpectNoFds())
        {
            return false;
        }

        ulong features = BinaryPrimitives.ReadUInt64LittleEndian(payload);
        ulong unknown = features & ~_offeredFeatures;
        if (unknown != 0)
        {
            return Refuse($"features 0x{unknown:x} were not offered (offered 0x{_offeredFeatures:x})");
        }

        _ackedFeatures = features;
        _backend.SetFeatures(features & ~ProtocolFeaturesBit);
        return true;
    }

    private bool HandleSetProtocolFeatures(ReadOnlySpan<byte> payload)
    {
        if (!ExpectSize(payload, 8) || !ExpectNoFds())
        {
            return false;
        }

        ulong features = BinaryPrimitives.ReadUInt64LittleEndian(payload);
        ulong unknown = features & ~(ulong)_offeredProtocol;
        if (unknown != 0)
        {
            return Refuse($"protocol features 0x{unknown:x} were not offered (offered 0x{(ulong)_offeredProtocol:x})");
        }

        _ackedProtocol = (VhostUserProtocolFeatures)features;
        return true;
    }

    private bool HandleSetVringNum(ReadOnlySpan<byte> payload)
    {
        if (!TryReadState(payload, out int index, out uint num, out VringState? ring))
        {
            return false;
        }

        if (num == 0 || (num & (num - 1)) != 0 || num > _maxQueueSize)
        {
            return Refuse($"queue {index} size {num} is not a power of two in 1..{_maxQueueSize}");
        }

        if (ring.Started)
        {
            return Refuse($"queue {index} is running; its size cannot change");
        }

        ring.Size = (ushort)num;
        return true;
    }

    private bool HandleSetVringBase(ReadOnlySpan<byte> payload)
    {
        if (!TryReadState(payload, out int index, out uint num, out VringState? ring))
        {
            return false;
        }

        if (num > ushort.MaxValue)
        {
            return Refuse($"queue {index} base 0x{num:x} has reserved bits 16-31 set (split rings only)");
        }

        if (ring.Started)
        {
            return Refuse($"queue {index} is running; its base cannot change");
        }

        ring.NextAvailableIndex = (ushort)num;
        return true;
    }

    private bool HandleGetVringBase(ReadOnlySpan<byte> payload)
    {
        if (!TryReadState(payload, out int index, out _, out VringState? ring))
        {
            return false;
        }

        ring.StopKicker();
        ushort next = ring.NextAvailableIndex;
        if (ring.Started)
        {
            ring.Started = false;
            next = _backend.StopQueue(index);
        }

        ring.NextAvailableIndex = next;
        ring.EnableRequested = false;
        ring.Call.SetFd(null);
        Span<byte> reply = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(reply, (uint)index);
        BinaryPrimitives.WriteUInt32LittleEndian(reply[4..], next);
        return SendReply(VhostUserRequest.GetVringBase, reply);
    }

    private bool HandleSetVringEnable(ReadOnlySpan<byte> payload)
    {
        if (!TryReadState(payload, out int index, out uint num, out VringState? ring))
        {
            return false;
        }

        if (num > 1)
        {
            return Refuse($"queue {index} enable value {num} is neither 0 nor 1");
        }

        bool enable = num == 1;
        ring.EnableRequested = enable;
        if (ring.Started)
        {
            _backend.SetQueueEnabled(index, enable);
        }

        return true;
    }

    private bool HandleSetVringAddr(ReadOnlySpan<byte> payload)
    {
        if (!ExpectSize(payload, 40) || !ExpectNoFds())
        {
            return false;
        }

        uint index = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(payload[4..]);
        ulong descriptors = BinaryPrimitives.ReadUInt64LittleEndian(payload[8..]);
        ulong used = BinaryPrimitives.ReadUInt64LittleEndian(payload[16..]);
        ulong available = BinaryPrimitives.ReadUInt64LittleEndian(payload[24..]);
        if (!TryGetRing(index, out VringState? ring))
        {
            return false;
        }

        if (flags != 0)
        {
            return Refuse($"queue {index} address flags 0x{flags:x}: dirty-page logging is not supported");
        }

        if (!TryTranslate(index, "descriptor table", descriptors, 16, out GuestAddress descriptorTable)
            || !TryTranslate(index, "available ring", available, 2, out GuestAddress availableRing)
            || !TryTranslate(index, "used ring", used, 4, out GuestAddress usedRing))
        {
            return false;
        }

        if (ring.Started)
        {
            if (ring.DescriptorTable == descriptorTable && ring.AvailableRing == availableRing && ring.UsedRing == usedRing)
            {
                return true;
            }

            return Refuse($"queue {index} is running; its rings cannot move");
        }

        ring.DescriptorTable = descriptorTable;
        ring.AvailableRing = availableRing;
        ring.UsedRing = usedRing;
        ring.HasAddresses = true;
        return true;
    }

    private bool HandleVringFd(VhostUserRequest request, ReadOnlySpan<byte> payload)
    {
        if (!ExpectSize(payload, 8))
        {
            return false;
        }

        ulong value = BinaryPrimitives.ReadUInt64LittleEndian(payload);
        if ((value & ~(VringIndexMask | VringNoFdFlag)) != 0)
        {
            return Refuse($"value 0x{value:x} has reserved bits set (only bits 0-8 are defined)");
        }

        bool noFd = (value & VringNoFdFlag) != 0;
        uint index = (uint)(value & VringIndexMask);
        if (!ExpectFds(noFd ? 0 : 1) || !TryGetRing(index, out VringState? ring))
        {
            return false;
        }

        if (!noFd)
        {
            int fd = _fds[0]!.Fd;
            if (!Descriptors.IsNotifier(fd, out string kind))
            {
                return Refuse($"queue {index} descriptor is {kind}, not an eventfd or pipe");
            }

            if (request != VhostUserRequest.SetVringErr && !Descriptors.SetNonBlocking(fd))
            {
                return Refuse($"queue {index} descriptor cannot be made non-blocking");
            }
        }

        switch (request)
        {
            case VhostUserRequest.SetVringCall:
                ring.Call.SetFd(noFd ? null : TakeFd(0));
                return true;
            case VhostUserRequest.SetVringErr:
                // Errors are never signalled: the descriptor is accepted and closed.
                return true;
            default:
                if (noFd)
                {
                    return Refuse($"queue {index} without a kick descriptor would need polling, which is not supported");
                }

                return ring.Started ? ReplaceKick(ring, (int)index) : StartRing(ring, (int)index);
        }
    }

    private bool ReplaceKick(VringState ring, int index)
    {
        ring.StopKicker();
        ring.Kicker = new KickWaiter(index, TakeFd(0), _backend, _logger);
        return true;
    }

    private bool StartRing(VringState ring, int index)
    {
        if (ring.Size == 0)
        {
            return Refuse($"queue {index} cannot start: no SET_VRING_NUM");
        }

        if (!ring.HasAddresses)
        {
            return Refuse($"queue {index} cannot start: no SET_VRING_ADDR");
        }

        if (_memory is null)
        {
            return Refuse($"queue {index} cannot start: no memory table");
        }

        ulong size = ring.Size;
        if (!CheckRing(index, "descriptor table", ring.DescriptorTable, 16 * size)
            || !CheckRing(index, "available ring", ring.AvailableRing, 6 + (2 * size))
            || !CheckRing(index, "used ring", ring.UsedRing, 6 + (8 * size)))
        {
            return false;
        }

        var config = new VringConfig(ring.Size, ring.DescriptorTable, ring.AvailableRing, ring.UsedRing, ring.NextAvailableIndex);
        _backend.StartQueue(index, config, ring.Call);
        ring.Started = true;
        if (!ProtocolFeaturesNegotiated || ring.EnableRequested)
        {
            _backend.SetQueueEnabled(index, true);
        }

        try
        {
            ring.Kicker = new KickWaiter(index, TakeFd(0), _backend, _logger);
        }
        catch (IOException exception)
        {
            ring.Started = false;
            ring.NextAvailableIndex = _backend.StopQueue(index);
            return Refuse($"queue {index} cannot start: {exception.Message}");
        }

        return true;
    }

    private bool CheckRing(int index, string part, GuestAddress address, ulong length)
    {
        MemoryError error = _memory!.CheckRange(address, length);
        return error == MemoryError.None
            || Refuse($"queue {index} {part} [{address}, +0x{length:x}) is not inside guest memory ({error})");
    }

    private bool HandleGetConfig(ReadOnlySpan<byte> payload)
    {
        if (!TryReadConfigHeader(payload, out uint offset, out uint size, out _) || !ExpectNoFds())
        {
            return false;
        }

        Span<byte> reply = stackalloc byte[HeaderSize + MaxConfigSize];
        reply = reply[..(12 + (int)size)];
        payload[..12].CopyTo(reply);
        Span<byte> data = reply[12..];
        data.Clear();
        if (!_backend.ReadConfig(offset, data))
        {
            return Refuse($"configuration range [{offset}, +{size}) is outside the device configuration space");
        }

        return SendReply(VhostUserRequest.GetConfig, reply);
    }

    private bool HandleSetConfig(ReadOnlySpan<byte> payload)
    {
        if (!TryReadConfigHeader(payload, out uint offset, out _, out uint flags) || !ExpectNoFds())
        {
            return false;
        }

        if (flags > 1)
        {
            return Refuse($"configuration flags 0x{flags:x} (only 0 = writable fields and 1 = migration are defined)");
        }

        return _backend.WriteConfig(offset, payload[12..], migration: flags == 1)
            || Refuse($"the device refused a write of {payload.Length - 12} bytes at configuration offset {offset}");
    }

    private bool TryReadConfigHeader(ReadOnlySpan<byte> payload, out uint offset, out uint size, out uint flags)
    {
        offset = size = flags = 0;
        if (!RequireOffered(VhostUserProtocolFeatures.Config))
        {
            return false;
        }

        if (payload.Length < 12)
        {
            return Refuse($"payload of {payload.Length} bytes is shorter than the 12-byte configuration header");
        }

        offset = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        size = BinaryPrimitives.ReadUInt32LittleEndian(payload[4..]);
        flags = BinaryPrimitives.ReadUInt32LittleEndian(payload[8..]);
        if (size == 0 || size > MaxConfigSize)
        {
            return Refuse($"configuration size {size} is outside 1..{MaxConfigSize}");
        }

        if (payload.Length != 12 + size)
        {
            return Refuse($"payload of {payload.Length} bytes does not match the configuration size {size} (+12)");
        }

        if ((ulong)offset + size > uint.MaxValue)
        {
            return Refuse($"configuration range [{offset}, +{size}) overflows");
        }

        return true;
    }

    private bool HandleSetMemTable(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 8)
        {
            return Refuse($"payload of {payload.Length} bytes is shorter than the 8-byte table header");
        }

        uint count = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        if (count == 0 || count > MaxTableRegions)
        {
            return Refuse($"region count {count} is outside 1..{MaxTableRegions}");
        }

        int expected = 8 + ((int)count * RegionDescriptor.EncodedSize);
        if (payload.Length != expected)
        {
            return Refuse($"payload of {payload.Length} bytes does not match {count} regions ({expected} bytes)");
        }

        if (!ExpectFds((int)count))
        {
            return false;
        }

        var mapped = new List<MemorySlot>((int)count);
        try
        {
            for (int i = 0; i < count; i++)
            {
                var region = RegionDescriptor.Read(payload.Slice(8 + (i * RegionDescriptor.EncodedSize), RegionDescriptor.EncodedSize));
                if (!TryMapRegion(region, _fds[i]!, out MemorySlot? slot))
                {
                    return false;
                }

                mapped.Add(slot);
            }

            if (!TryBuildMemory(mapped, out GuestMemory? memory))
            {
                return false;
            }

            List<MemorySlot> old = [.. _slots];
            _slots.Clear();
            _slots.AddRange(mapped);
            mapped.Clear();
            InstallMemory(memory);
            foreach (MemorySlot slot in old)
            {
                slot.Dispose();
            }

            return true;
        }
        finally
        {
            foreach (MemorySlot slot in mapped)
            {
                slot.Dispose();
            }
        }
    }

    private bool HandleAddMemReg(ReadOnlySpan<byte> payload)
    {
        if (!RequireNegotiated(VhostUserProtocolFeatures.ConfigureMemSlots)
            || !ExpectSize(payload, 8 + RegionDescriptor.EncodedSize) || !ExpectFds(1))
        {
            return false;
        }

        if (_slots.Count >= MaxMemorySlots)
        {
            return Refuse($"all {MaxMemorySlots} memory slots are in use");
        }

        var region = RegionDescriptor.Read(payload[8..]);
        if (!TryMapRegion(region, _fds[0]!, out MemorySlot? slot))
        {
            return false;
        }

        List<MemorySlot> candidate = [.. _slots, slot];
        if (!TryBuildMemory(candidate, out GuestMemory? memory))
        {
            slot.Dispose();
            return false;
        }

        _slots.Add(slot);
        InstallMemory(memory);
        return true;
    }

    private bool HandleRemMemReg(ReadOnlySpan<byte> payload)
    {
        // One descriptor is tolerated for compatibility with older frontends; it is closed unused.
        if (!RequireNegotiated(VhostUserProtocolFeatures.ConfigureMemSlots) || !ExpectSize(payload, 8 + RegionDescriptor.EncodedSize))
        {
            return false;
        }

        if (_fds.Count > 1)
        {
            return Refuse($"{_fds.Count} descriptors attached, at most 1 is tolerated");
        }

        var region = RegionDescriptor.Read(payload[8..]);
        int found = _slots.FindIndex(slot =>
            slot.Region.Start.Value == region.GuestAddress && slot.Region.Size == region.Size && slot.UserAddress == region.UserAddress);
        if (found < 0)
        {
            return Refuse($"region {region} is not in the memory table");
        }

        MemorySlot removed = _slots[found];
        List<MemorySlot> remaining = [.. _slots];
        remaining.RemoveAt(found);
        GuestMemory? memory = null;
        if (remaining.Count > 0 && !TryBuildMemory(remaining, out memory))
        {
            return false;
        }

        _slots.RemoveAt(found);
        InstallMemory(memory);
        removed.Dispose();
        return true;
    }

    private bool TryMapRegion(RegionDescriptor region, SafeFileDescriptor fd, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out MemorySlot? slot)
    {
        slot = null;
        if (region.Size == 0)
        {
            return Refuse($"region {region} is empty");
        }

        if (region.GuestAddress + (region.Size - 1) < region.GuestAddress)
        {
            return Refuse($"region {region} overflows the guest physical address space");
        }

        if (region.UserAddress + (region.Size - 1) < region.UserAddress)
        {
            return Refuse($"region {region} overflows the frontend address space");
        }

        ulong end = region.MmapOffset + region.Size;
        if (end < region.Size || end > long.MaxValue)
        {
            return Refuse($"region {region} mmap offset plus size overflows");
        }

        int errno = Descriptors.Stat(fd.Fd, out ulong fileSize, out ushort fileType);
        if (errno != 0)
        {
            return Refuse($"region {region} descriptor cannot be inspected (errno {errno})");
        }

        if (fileType != Interop.Sys.SIfReg)
        {
            return Refuse($"region {region} descriptor is not a regular (memfd or shared memory) file (type 0x{fileType:x})");
        }

        if (fileSize < end)
        {
            // Mapping past the end of the file would raise SIGBUS on first access.
            return Refuse($"region {region} needs 0x{end:x} bytes but the file has only 0x{fileSize:x}");
        }

        if (!_unsealedWarned && !IsSealedAgainstShrinking(fd.Fd))
        {
            _unsealedWarned = true;
            Log.UnsealedRegion(_logger, region.ToString());
        }

        GuestRegion mapped;
        try
        {
            mapped = GuestRegion.MapFile(new GuestAddress(region.GuestAddress), region.Size, fd.Fd, region.MmapOffset);
        }
        catch (Exception exception) when (exception is IOException or ArgumentException)
        {
            return Refuse($"region {region} cannot be mapped: {exception.Message}");
        }

        slot = new MemorySlot(mapped, region.UserAddress);
        return true;
    }

    /// <summary>Whether the file behind a region cannot shrink: only then can no frontend make a mapped page vanish.</summary>
    internal static bool IsSealedAgainstShrinking(int fd)
    {
        int seals = Interop.Sys.Fcntl(fd, Interop.Sys.FGetSeals, 0);
        return seals >= 0 && (seals & Interop.Sys.FSealShrink) != 0;
    }

    private bool TryBuildMemory(List<MemorySlot> slots, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out GuestMemory? memory)
    {
        memory = null;
        for (int i = 0; i < slots.Count; i++)
        {
            for (int j = i + 1; j < slots.Count; j++)
            {
                if (slots[i].UserAddress <= slots[j].LastUserAddress && slots[j].UserAddress <= slots[i].LastUserAddress)
                {
                    return Refuse($"regions {slots[i].Region} and {slots[j].Region} overlap in the frontend address space");
                }
            }
        }

        var regions = new GuestRegion[slots.Count];
        for (int i = 0; i < regions.Length; i++)
        {
            regions[i] = slots[i].Region;
        }

        try
        {
            memory = GuestMemory.Create(regions);
            return true;
        }
        catch (ArgumentException exception)
        {
            return Refuse(exception.Message);
        }
    }

    /// <summary>Makes <paramref name="memory"/> current, hands it to the backend, and drops this connection's reference to the previous table.</summary>
    private void InstallMemory(GuestMemory? memory)
    {
        GuestMemory? old = _memory;
        _memory = memory;
        try
        {
            _backend.SetMemory(memory);
        }
        finally
        {
            old?.Dispose();
        }
    }

    private bool TryTranslate(uint index, string part, ulong userAddress, ulong alignment, out GuestAddress guestAddress)
    {
        guestAddress = default;
        if ((userAddress & (alignment - 1)) != 0)
        {
            return Refuse($"queue {index} {part} address 0x{userAddress:x} is not {alignment}-byte aligned");
        }

        foreach (MemorySlot slot in _slots)
        {
            if (slot.TryTranslate(userAddress, out guestAddress))
            {
                // The virtio alignment rules are about guest physical addresses: a region whose frontend and
                // guest addresses differ in their low bits turns an aligned frontend address into a misaligned ring.
                return guestAddress.IsAligned(alignment)
                    || Refuse($"queue {index} {part} address 0x{userAddress:x} translates to guest address {guestAddress}, which is not {alignment}-byte aligned");
            }
        }

        return Refuse($"queue {index} {part} address 0x{userAddress:x} is not in the memory table");
    }

    private bool TryReadState(ReadOnlySpan<byte> payload, out int index, out uint num, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out VringState? ring)
    {
        index = 0;
        num = 0;
        ring = null;
        if (!ExpectSize(payload, 8) || !ExpectNoFds())
        {
            return false;
        }

        uint rawIndex = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        num = BinaryPrimitives.ReadUInt32LittleEndian(payload[4..]);
        if (!TryGetRing(rawIndex, out ring))
        {
            return false;
        }

        index = (int)rawIndex;
        return true;
    }

    private bool TryGetRing(uint index, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out VringState? ring)
    {
        if (index >= (uint)_queueCount)
        {
            ring = null;
            return Refuse($"queue index {index} is out of range (the device has {_queueCount} queues)");
        }

        ring = _vrings[index];
        return true;
    }

    private bool RequireOffered(VhostUserProtocolFeatures feature) =>
        (_offeredProtocol & feature) != 0 || Refuse($"protocol feature {feature} is not offered");

    private bool RequireNegotiated(VhostUserProtocolFeatures feature) =>
        (_ackedProtocol & feature) != 0 || Refuse($"protocol feature {feature} was not negotiated");

    private bool ExpectSize(ReadOnlySpan<byte> payload, int size) =>
        payload.Length == size || Refuse($"payload of {payload.Length} bytes, expected {size}");

    private bool ExpectNoFds() => ExpectFds(0);

    private bool ExpectFds(int count) =>
        _fds.Count == count || Refuse($"{_fds.Count} descriptors attached, expected {count} (all closed)");

    private bool Refuse(string reason)
    {
        Log.Refused(_logger, _currentRequest, reason);
        return false;
    }

    private SafeFileDescriptor TakeFd(int index)
    {
        SafeFileDescriptor fd = _fds[index]!;
        _fds[index] = null;
        return fd;
    }

    private void CloseUnusedFds()
    {
        foreach (SafeFileDescriptor? fd in _fds)
        {
            fd?.Dispose();
        }

        _fds.Clear();
    }

    private bool ReplyU64(VhostUserRequest request, ulong value)
    {
        Span<byte> payload = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(payload, value);
        return SendReply(request, payload);
    }

    private bool SendReply(VhostUserRequest request, ReadOnlySpan<byte> payload)
    {
        Span<byte> message = stackalloc byte[HeaderSize + MaxConfigSize + 12];
        message = message[..(HeaderSize + payload.Length)];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)request);
        BinaryPrimitives.WriteUInt32LittleEndian(message[4..], Version | ReplyFlag);
        BinaryPrimitives.WriteUInt32LittleEndian(message[8..], (uint)payload.Length);
        payload.CopyTo(message[HeaderSize..]);
        ChannelStatus status = _channel.SendAll(message);
        if (status != ChannelStatus.Ok)
        {
            _closeReason = Describe(status, "sending a reply");
            return false;
        }

        return true;
    }

    private string Describe(ChannelStatus status, string activity) => status switch
    {
        ChannelStatus.Closed => activity == "waiting for a message" ? "frontend closed the connection" : $"frontend closed the connection while {activity}",
        ChannelStatus.Stopped => "stopped by the host",
        _ => $"socket error (errno {_channel.LastErrno}) while {activity}",
    };

    /// <summary>Stops every queue and forgets the device state; the connection itself stays up.</summary>
    private void ResetDeviceState(string cause)
    {
        Log.Lifecycle(_logger, $"{cause}: resetting the device");
        foreach (VringState ring in _vrings)
        {
            ring.StopKicker();
        }

        try
        {
            _backend.Reset();
        }
        finally
        {
            foreach (VringState ring in _vrings)
            {
                ring.Clear();
            }

            ReleaseMemory();
            _ackedFeatures = 0;
            _status = 0;
        }
    }

    private void ReleaseMemory()
    {
        _memory?.Dispose();
        _memory = null;
        foreach (MemorySlot slot in _slots)
        {
            slot.Dispose();
        }

        _slots.Clear();
    }

    private void Teardown(string reason)
    {
        foreach (VringState ring in _vrings)
        {
            ring.StopKicker();
        }

        try
        {
            _backend.Reset();
        }
#pragma warning disable CA1031 // The connection must release its resources whatever the backend does.
        catch (Exception exception)
#pragma warning restore CA1031
        {
            Log.BackendFailed(_logger, "reset after disconnect", exception);
        }

        foreach (VringState ring in _vrings)
        {
            ring.Dispose();
        }

        ReleaseMemory();
        CloseUnusedFds();
        _channel.Dispose();
        _socket.Dispose();
        Log.FrontendDisconnected(_logger, reason);
    }
}
