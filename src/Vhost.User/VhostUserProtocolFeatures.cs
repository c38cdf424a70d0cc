namespace Vhost.User;

/// <summary>
/// vhost-user protocol feature bits (<c>VHOST_USER_PROTOCOL_F_*</c>), negotiated with
/// <c>GET_PROTOCOL_FEATURES</c> / <c>SET_PROTOCOL_FEATURES</c> once the virtio feature bit 30
/// (<c>VHOST_USER_F_PROTOCOL_FEATURES</c>) is offered.
/// </summary>
/// <remarks>
/// <see cref="VhostUserConnection"/> implements <see cref="Mq"/>, <see cref="ReplyAck"/>, <see cref="Config"/>,
/// <see cref="ConfigureMemSlots"/>, <see cref="ResetDevice"/> and <see cref="Status"/>
/// (<see cref="VhostUserConnection.SupportedProtocolFeatures"/>); other bits a backend offers are not
/// advertised to the frontend.
/// </remarks>
[Flags]
#pragma warning disable CA1711 // The protocol names these "features"; the enum is a flag set, not an event handler.
public enum VhostUserProtocolFeatures : ulong
#pragma warning restore CA1711
{
    /// <summary>No protocol feature.</summary>
    None = 0,

    /// <summary>Bit 0: the backend reports its queue count (<c>GET_QUEUE_NUM</c>).</summary>
    Mq = 1UL << 0,

    /// <summary>Bit 1: dirty logging in shared memory (<c>SET_LOG_BASE</c> with an fd).</summary>
    LogShmfd = 1UL << 1,

    /// <summary>Bit 2: <c>SEND_RARP</c> (vhost-user-net).</summary>
    Rarp = 1UL << 2,

    /// <summary>Bit 3: requests with NEED_REPLY get a u64 status reply (0 = success).</summary>
    ReplyAck = 1UL << 3,

    /// <summary>Bit 4: <c>NET_SET_MTU</c>.</summary>
    Mtu = 1UL << 4,

    /// <summary>Bit 5: a backend-to-frontend request channel (<c>SET_BACKEND_REQ_FD</c>).</summary>
    BackendReq = 1UL << 5,

    /// <summary>Bit 6: <c>SET_VRING_ENDIAN</c> for legacy cross-endian guests.</summary>
    CrossEndian = 1UL << 6,

    /// <summary>Bit 7: crypto sessions.</summary>
    CryptoSession = 1UL << 7,

    /// <summary>Bit 8: postcopy migration with userfaultfd.</summary>
    Pagefault = 1UL << 8,

    /// <summary>Bit 9: the device configuration space is served by the backend (<c>GET_CONFIG</c>/<c>SET_CONFIG</c>).</summary>
    Config = 1UL << 9,

    /// <summary>Bit 10: the backend channel may carry descriptors.</summary>
    BackendSendFd = 1UL << 10,

    /// <summary>Bit 11: host notifiers mapped into the guest.</summary>
    HostNotifier = 1UL << 11,

    /// <summary>Bit 12: inflight I/O tracking in shared memory.</summary>
    InflightShmfd = 1UL << 12,

    /// <summary>Bit 13: <c>RESET_DEVICE</c>.</summary>
    ResetDevice = 1UL << 13,

    /// <summary>Bit 14: kicks and calls as in-band messages.</summary>
    InbandNotifications = 1UL << 14,

    /// <summary>Bit 15: <c>GET_MAX_MEM_SLOTS</c>, <c>ADD_MEM_REG</c>, <c>REM_MEM_REG</c>.</summary>
    ConfigureMemSlots = 1UL << 15,

    /// <summary>Bit 16: <c>SET_STATUS</c>/<c>GET_STATUS</c> (virtio device status byte).</summary>
    Status = 1UL << 16,

    /// <summary>Bit 17: Xen foreign memory mappings.</summary>
    XenMmap = 1UL << 17,

    /// <summary>Bit 18: shared objects.</summary>
    SharedObject = 1UL << 18,

    /// <summary>Bit 19: device state transfer for migration.</summary>
    DeviceState = 1UL << 19,
}
