using System.Buffers.Binary;

namespace Vhost.User;

/// <summary>
/// Routes each well-framed request to its handler (feature negotiation and device status here; rings, memory and
/// configuration in <see cref="VringTable"/>, <see cref="MemoryTable"/> and <see cref="DeviceConfigRequests"/>),
/// turns a backend exception into a refusal, and sends the reply the request calls for: its data, an error, or a
/// REPLY_ACK. Touched by the control thread only; must never read the socket (the channel does) nor let an
/// exception from a handler or the backend escape.
/// </summary>
internal sealed class RequestDispatcher
{
    private readonly RequestContext _context;
    private readonly IVhostUserBackend _backend;
    private readonly VringTable _vrings;
    private readonly MemoryTable _memory;
    private readonly DeviceConfigRequests _config;
    private readonly Action<string> _resetDevice;
    private readonly int _queueCount;
    private ulong _status;
    private bool _owned;

    /// <summary>Creates the dispatcher of one connection.</summary>
    /// <param name="context">The request context.</param>
    /// <param name="backend">The device.</param>
    /// <param name="vrings">The vring state machine.</param>
    /// <param name="memory">The memory table.</param>
    /// <param name="config">The configuration requests.</param>
    /// <param name="resetDevice">Resets the device (RESET_OWNER, RESET_DEVICE), given the cause.</param>
    internal RequestDispatcher(RequestContext context, IVhostUserBackend backend, VringTable vrings, MemoryTable memory, DeviceConfigRequests config, Action<string> resetDevice)
    {
        _context = context;
        _backend = backend;
        _vrings = vrings;
        _memory = memory;
        _config = config;
        _resetDevice = resetDevice;
        _queueCount = backend.QueueCount;
    }

    /// <summary>Forgets the negotiated virtio features and the device status (device reset).</summary>
    internal void ResetNegotiation()
    {
        _context.AckedFeatures = 0;
        _status = 0;
    }

    internal void Dispatch(VhostUserRequest request, bool needReply, ReadOnlySpan<byte> payload, bool fdsDropped)
    {
        _context.CurrentRequest = VhostUserConnection.RequestName((uint)request);
        Log.Received(_context.Logger, _context.CurrentRequest, needReply ? MessageChannel.Version | MessageChannel.NeedReplyFlag : MessageChannel.Version, (uint)payload.Length, _context.FdCount);
        bool ok;
        if (fdsDropped)
        {
            ok = _context.Refuse($"more than {MessageChannel.MaxFdsPerMessage} descriptors attached (all closed)");
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
                Log.BackendFailed(_context.Logger, _context.CurrentRequest, exception);
                ok = false;
            }
        }

        if (_context.Channel.CloseReason is not null)
        {
            return;
        }

        switch (ReplyKindOf(request))
        {
            case ReplyKind.Data when !ok:
                _context.Channel.SendReply(request, []);
                break;
            case ReplyKind.Status when !ok:
                _context.Channel.ReplyU64(request, 1);
                break;
            case ReplyKind.None when needReply && _context.ReplyAckNegotiated:
                _context.Channel.ReplyU64(request, ok ? 0UL : 1UL);
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
                return _context.ExpectSize(payload, 0) && _context.ExpectNoFds() && _context.Channel.ReplyU64(request, _context.OfferedFeatures);
            case VhostUserRequest.SetFeatures:
                return HandleSetFeatures(payload);
            case VhostUserRequest.SetOwner:
                if (!_context.ExpectSize(payload, 0) || !_context.ExpectNoFds())
                {
                    return false;
                }

                if (_owned)
                {
                    Log.Trace(_context.Logger, "SET_OWNER repeated by the same frontend");
                }

                _owned = true;
                return true;
            case VhostUserRequest.ResetOwner:
                if (!_context.ExpectSize(payload, 0) || !_context.ExpectNoFds())
                {
                    return false;
                }

                _resetDevice("RESET_OWNER");
                return true;
            case VhostUserRequest.SetMemTable:
                return _memory.HandleSetMemTable(payload);
            case VhostUserRequest.SetLogBase:
            case VhostUserRequest.SetLogFd:
                return _context.Refuse("dirty-page logging is not supported (LOG_SHMFD is not offered)");
            case VhostUserRequest.SetVringNum:
                return _vrings.HandleSetVringNum(payload);
            case VhostUserRequest.SetVringAddr:
                return _vrings.HandleSetVringAddr(payload);
            case VhostUserRequest.SetVringBase:
                return _vrings.HandleSetVringBase(payload);
            case VhostUserRequest.GetVringBase:
                return _vrings.HandleGetVringBase(payload);
            case VhostUserRequest.SetVringKick:
            case VhostUserRequest.SetVringCall:
            case VhostUserRequest.SetVringErr:
                return _vrings.HandleVringFd(request, payload);
            case VhostUserRequest.GetProtocolFeatures:
                return _context.ExpectSize(payload, 0) && _context.ExpectNoFds() && _context.Channel.ReplyU64(request, (ulong)_context.OfferedProtocol);
            case VhostUserRequest.SetProtocolFeatures:
                return HandleSetProtocolFeatures(payload);
            case VhostUserRequest.GetQueueNum:
                return _context.ExpectSize(payload, 0) && _context.ExpectNoFds() && _context.Channel.ReplyU64(request, (ulong)_queueCount);
            case VhostUserRequest.SetVringEnable:
                return _vrings.HandleSetVringEnable(payload);
            case VhostUserRequest.SetBackendReqFd:
                if (!_context.ExpectSize(payload, 0) || !_context.ExpectFds(1))
                {
                    return false;
                }

                Log.Trace(_context.Logger, "SET_BACKEND_REQ_FD accepted; the backend channel is not used and its descriptor is closed");
                return true;
            case VhostUserRequest.GetConfig:
                return _config.HandleGetConfig(payload);
            case VhostUserRequest.SetConfig:
                return _config.HandleSetConfig(payload);
            case VhostUserRequest.ResetDevice:
                if (!_context.RequireOffered(VhostUserProtocolFeatures.ResetDevice) || !_context.ExpectSize(payload, 0) || !_context.ExpectNoFds())
                {
                    return false;
                }

                _resetDevice("RESET_DEVICE");
                return true;
            case VhostUserRequest.GetMaxMemSlots:
                return _context.RequireNegotiated(VhostUserProtocolFeatures.ConfigureMemSlots)
                    && _context.ExpectSize(payload, 0) && _context.ExpectNoFds() && _context.Channel.ReplyU64(request, VhostUserConnection.MaxMemorySlots);
            case VhostUserRequest.AddMemReg:
                return _memory.HandleAddMemReg(payload);
            case VhostUserRequest.RemMemReg:
                return _memory.HandleRemMemReg(payload);
            case VhostUserRequest.SetStatus:
                if (!_context.RequireOffered(VhostUserProtocolFeatures.Status) || !_context.ExpectSize(payload, 8) || !_context.ExpectNoFds())
                {
                    return false;
                }

                ulong status = BinaryPrimitives.ReadUInt64LittleEndian(payload);
                if (status > 0xff)
                {
                    return _context.Refuse($"device status 0x{status:x} does not fit the 8-bit status field");
                }

                _status = status;
                return true;
            case VhostUserRequest.GetStatus:
                return _context.RequireOffered(VhostUserProtocolFeatures.Status) && _context.ExpectSize(payload, 0) && _context.ExpectNoFds()
                    && _context.Channel.ReplyU64(request, _status);
            default:
                return _context.Refuse(Enum.IsDefined(request) ? "not supported by this backend (feature not offered)" : "unknown request");
        }
    }

    private bool HandleSetFeatures(ReadOnlySpan<byte> payload)
    {
        if (!_context.ExpectSize(payload, 8) || !_context.ExpectNoFds())
        {
            return false;
        }

        ulong features = BinaryPrimitives.ReadUInt64LittleEndian(payload);
        ulong unknown = features & ~_context.OfferedFeatures;
        if (unknown != 0)
        {
            return _context.Refuse($"features 0x{unknown:x} were not offered (offered 0x{_context.OfferedFeatures:x})");
        }

        _context.AckedFeatures = features;
        _backend.SetFeatures(features & ~VhostUserConnection.ProtocolFeaturesBit);
        return true;
    }

    private bool HandleSetProtocolFeatures(ReadOnlySpan<byte> payload)
    {
        if (!_context.ExpectSize(payload, 8) || !_context.ExpectNoFds())
        {
            return false;
        }

        ulong features = BinaryPrimitives.ReadUInt64LittleEndian(payload);
        ulong unknown = features & ~(ulong)_context.OfferedProtocol;
        if (unknown != 0)
        {
            return _context.Refuse($"protocol features 0x{unknown:x} were not offered (offered 0x{(ulong)_context.OfferedProtocol:x})");
        }

        _context.AckedProtocol = (VhostUserProtocolFeatures)features;
        return true;
    }
}
