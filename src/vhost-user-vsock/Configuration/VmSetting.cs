namespace VhostUserVsock.Configuration;

/// <summary>The settings of one VM, as named by <c>--vm</c> keys, one-VM options and config-file keys.</summary>
public enum VmSetting
{
    /// <summary><c>guest-cid</c> / <c>guest_cid</c>; optional, default 3.</summary>
    GuestCid,

    /// <summary><c>socket</c>: the vhost-user socket path; required.</summary>
    Socket,

    /// <summary><c>uds-path</c> / <c>uds_path</c>: the host-side Unix socket path; required.</summary>
    UdsPath,

    /// <summary><c>tx-buffer-size</c> / <c>tx_buffer_size</c>; optional, default 65536.</summary>
    TxBufferSize,

    /// <summary><c>queue-size</c> / <c>queue_size</c>; optional, default 1024.</summary>
    QueueSize,

    /// <summary><c>groups</c>: group names joined by '+'; optional, default <c>default</c>.</summary>
    Groups,
}
