namespace Virtio.Vsock;

/// <summary>The operation of a vsock packet (header field <c>op</c>, le16 at offset 30).</summary>
public enum VsockOp : ushort
{
    /// <summary>Not a valid operation; a connection that receives it is reset.</summary>
    Invalid = 0,

    /// <summary>Connection request from the sender (a connect()).</summary>
    Request = 1,

    /// <summary>Connection accepted: the answer to <see cref="Request"/>.</summary>
    Response = 2,

    /// <summary>Connection reset: refused, aborted, or the end of a full close.</summary>
    Rst = 3,

    /// <summary>Half- or full close; <see cref="ShutdownFlags"/> in the header's flags say which direction.</summary>
    Shutdown = 4,

    /// <summary>Payload data (read/write), within the receiver's credit.</summary>
    Rw = 5,

    /// <summary>The sender's current <c>buf_alloc</c> and <c>fwd_cnt</c>, unsolicited or answering a request.</summary>
    CreditUpdate = 6,

    /// <summary>Asks the receiver to send a <see cref="CreditUpdate"/>.</summary>
    CreditRequest = 7,
}
