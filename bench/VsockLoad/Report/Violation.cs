namespace VsockLoad.Report;

/// <summary>The protocol rules and data checks the load generator enforces on the backend.</summary>
internal enum Violation
{
    /// <summary>An RX buffer came back with used.len below the 44-byte header.</summary>
    RxWithoutHeader,

    /// <summary>used.len of an RX buffer is not 44 + header.len, or header.len exceeds the buffer.</summary>
    RxLengthMismatch,

    /// <summary>An op outside REQUEST..CREDIT_REQUEST.</summary>
    InvalidOp,

    /// <summary>A type other than STREAM.</summary>
    InvalidType,

    /// <summary>src_cid is not the host (2) or dst_cid is not the guest's CID.</summary>
    BadCid,

    /// <summary>A control packet (not RW) with a payload.</summary>
    ControlWithPayload,

    /// <summary>RW beyond the credit the guest advertised (buf_alloc - (rx - last fwd_cnt sent)).</summary>
    CreditOverrun,

    /// <summary>A packet (not RST) for a connection that never existed.</summary>
    UnknownConnection,

    /// <summary>A packet that does not fit the connection's state (RW before RESPONSE, a second RESPONSE, ...).</summary>
    UnexpectedPacket,

    /// <summary>The connection was reset while data was still due.</summary>
    UnexpectedReset,

    /// <summary>A byte differs from the pattern (or arrived on the wrong connection).</summary>
    DataMismatch,

    /// <summary>More bytes than were sent.</summary>
    ExtraData,

    /// <summary>The used ring returned a head that is not an outstanding chain.</summary>
    BadUsedHead,

    /// <summary>A TX chain came back with used.len other than 0 (the device wrote into a read-only chain).</summary>
    TxUsedLength,

    /// <summary>The host connect handshake (CONNECT / OK) failed or the host socket failed.</summary>
    HostSocket,

    /// <summary>The run did not finish before its deadline.</summary>
    Timeout,
}
