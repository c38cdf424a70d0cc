namespace VsockLoad.Frontend;

/// <summary>The vhost-user request codes the load generator sends (a QEMU vsock frontend's set).</summary>
internal enum VhostRequest : uint
{
    /// <summary>GET_FEATURES.</summary>
    GetFeatures = 1,

    /// <summary>SET_FEATURES.</summary>
    SetFeatures = 2,

    /// <summary>SET_OWNER.</summary>
    SetOwner = 3,

    /// <summary>SET_MEM_TABLE.</summary>
    SetMemTable = 5,

    /// <summary>SET_VRING_NUM.</summary>
    SetVringNum = 8,

    /// <summary>SET_VRING_ADDR.</summary>
    SetVringAddr = 9,

    /// <summary>SET_VRING_BASE.</summary>
    SetVringBase = 10,

    /// <summary>GET_VRING_BASE.</summary>
    GetVringBase = 11,

    /// <summary>SET_VRING_KICK.</summary>
    SetVringKick = 12,

    /// <summary>SET_VRING_CALL.</summary>
    SetVringCall = 13,

    /// <summary>GET_PROTOCOL_FEATURES.</summary>
    GetProtocolFeatures = 15,

    /// <summary>SET_PROTOCOL_FEATURES.</summary>
    SetProtocolFeatures = 16,

    /// <summary>SET_VRING_ENABLE.</summary>
    SetVringEnable = 18,

    /// <summary>GET_CONFIG.</summary>
    GetConfig = 24,
}
