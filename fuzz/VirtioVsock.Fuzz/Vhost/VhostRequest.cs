namespace VirtioVsock.Fuzz.Vhost;

/// <summary>vhost-user front-end request codes (the protocol's numbering; Vhost.User keeps its own enum internal).</summary>
public enum VhostRequest : uint
{
    /// <summary>VHOST_USER_GET_FEATURES.</summary>
    GetFeatures = 1,

    /// <summary>VHOST_USER_SET_FEATURES.</summary>
    SetFeatures = 2,

    /// <summary>VHOST_USER_SET_OWNER.</summary>
    SetOwner = 3,

    /// <summary>VHOST_USER_RESET_OWNER.</summary>
    ResetOwner = 4,

    /// <summary>VHOST_USER_SET_MEM_TABLE.</summary>
    SetMemTable = 5,

    /// <summary>VHOST_USER_SET_VRING_NUM.</summary>
    SetVringNum = 8,

    /// <summary>VHOST_USER_SET_VRING_ADDR.</summary>
    SetVringAddr = 9,

    /// <summary>VHOST_USER_SET_VRING_BASE.</summary>
    SetVringBase = 10,

    /// <summary>VHOST_USER_GET_VRING_BASE.</summary>
    GetVringBase = 11,

    /// <summary>VHOST_USER_SET_VRING_KICK.</summary>
    SetVringKick = 12,

    /// <summary>VHOST_USER_SET_VRING_CALL.</summary>
    SetVringCall = 13,

    /// <summary>VHOST_USER_SET_VRING_ERR.</summary>
    SetVringErr = 14,

    /// <summary>VHOST_USER_GET_PROTOCOL_FEATURES.</summary>
    GetProtocolFeatures = 15,

    /// <summary>VHOST_USER_SET_PROTOCOL_FEATURES.</summary>
    SetProtocolFeatures = 16,

    /// <summary>VHOST_USER_GET_QUEUE_NUM.</summary>
    GetQueueNum = 17,

    /// <summary>VHOST_USER_SET_VRING_ENABLE.</summary>
    SetVringEnable = 18,

    /// <summary>VHOST_USER_SET_BACKEND_REQ_FD.</summary>
    SetBackendReqFd = 21,

    /// <summary>VHOST_USER_GET_CONFIG.</summary>
    GetConfig = 24,

    /// <summary>VHOST_USER_SET_CONFIG.</summary>
    SetConfig = 25,

    /// <summary>VHOST_USER_RESET_DEVICE.</summary>
    ResetDevice = 34,

    /// <summary>VHOST_USER_GET_MAX_MEM_SLOTS.</summary>
    GetMaxMemSlots = 36,

    /// <summary>VHOST_USER_ADD_MEM_REG.</summary>
    AddMemReg = 37,

    /// <summary>VHOST_USER_REM_MEM_REG.</summary>
    RemMemReg = 38,

    /// <summary>VHOST_USER_SET_STATUS.</summary>
    SetStatus = 39,

    /// <summary>VHOST_USER_GET_STATUS.</summary>
    GetStatus = 40,
}
