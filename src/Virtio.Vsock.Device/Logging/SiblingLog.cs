using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Virtio.Vsock.Device.Siblings;

namespace Virtio.Vsock.Device;

/// <summary>
/// Per-connection log events of the sibling relay (guest-to-guest connections): open and close at
/// debug, every packet relayed (out of the local guest, into it) at trace. Resets with their reason
/// are logged by the relay itself (event 210). Source-generated: when the level is off a call costs a
/// null check and an <see cref="ILogger.IsEnabled"/> call, with no allocation, boxing or formatting.
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> the event ids 230-239 and the message texts.</para>
/// <para><b>Must never:</b> build strings or allocate before the level check.</para>
/// </remarks>
internal static partial class SiblingLog
{
    /// <summary>A flow (one guest-to-guest connection as seen by this guest's side) was created.</summary>
    /// <param name="logger">The device's logger, or <see langword="null"/>.</param>
    /// <param name="localCid">This guest's CID.</param>
    /// <param name="key">The flow.</param>
    /// <param name="type">Its socket type.</param>
    /// <param name="locallyInitiated">Whether this guest sent the REQUEST.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Opened(ILogger? logger, ulong localCid, SiblingFlowKey key, VsockType type, bool locallyInitiated)
    {
        if (logger is not null)
            LogOpened(logger, localCid, key.LocalPort, key.PeerCid, key.PeerPort, type, locallyInitiated ? localCid : key.PeerCid);
    }

    /// <summary>A flow left the table (RST from either side, replaced, or failed).</summary>
    /// <param name="logger">The device's logger, or <see langword="null"/>.</param>
    /// <param name="localCid">This guest's CID.</param>
    /// <param name="key">The flow.</param>
    /// <param name="state">The state it was in.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Closed(ILogger? logger, ulong localCid, SiblingFlowKey key, SiblingFlowState state)
    {
        if (logger is not null)
            LogClosed(logger, localCid, key.LocalPort, key.PeerCid, key.PeerPort, state);
    }

    /// <summary>A packet from the local guest to a sibling.</summary>
    /// <param name="logger">The device's logger, or <see langword="null"/>.</param>
    /// <param name="packet">The packet.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Outgoing(ILogger? logger, VsockPacket packet)
    {
        if (logger is not null && logger.IsEnabled(LogLevel.Trace))
            LogOutgoing(logger, packet.Op, packet.SrcCid, packet.SrcPort, packet.DstCid, packet.DstPort, packet.Len, packet.BufAlloc, packet.FwdCnt, packet.Flags);
    }

    /// <summary>A packet (or a piece of one) from a sibling written into the local guest's RX buffer.</summary>
    /// <param name="logger">The device's logger, or <see langword="null"/>.</param>
    /// <param name="header">The header as written.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Delivered(ILogger? logger, in VsockHeader header)
    {
        if (logger is not null && logger.IsEnabled(LogLevel.Trace))
            LogDelivered(logger, header.Op, header.SrcCid, header.SrcPort, header.DstCid, header.DstPort, header.Len, header.BufAlloc, header.FwdCnt, header.Flags);
    }

    [LoggerMessage(EventId = 230, Level = LogLevel.Debug, Message = "vsock: sibling connection {LocalCid}:{LocalPort} <-> {PeerCid}:{PeerPort} ({Type}) opened by CID {Initiator}")]
    private static partial void LogOpened(ILogger logger, ulong localCid, uint localPort, ulong peerCid, uint peerPort, VsockType type, ulong initiator);

    [LoggerMessage(EventId = 231, Level = LogLevel.Debug, Message = "vsock: sibling connection {LocalCid}:{LocalPort} <-> {PeerCid}:{PeerPort} closed in state {State}")]
    private static partial void LogClosed(ILogger logger, ulong localCid, uint localPort, ulong peerCid, uint peerPort, SiblingFlowState state);

    [LoggerMessage(EventId = 232, Level = LogLevel.Trace, Message = "vsock: sibling out {Op} {SrcCid}:{SrcPort} -> {DstCid}:{DstPort} len {Len} buf_alloc {BufAlloc} fwd_cnt {FwdCnt} flags {Flags}")]
    private static partial void LogOutgoing(ILogger logger, VsockOp op, ulong srcCid, uint srcPort, ulong dstCid, uint dstPort, uint len, uint bufAlloc, uint fwdCnt, uint flags);

    [LoggerMessage(EventId = 233, Level = LogLevel.Trace, Message = "vsock: sibling in {Op} {SrcCid}:{SrcPort} -> {DstCid}:{DstPort} len {Len} buf_alloc {BufAlloc} fwd_cnt {FwdCnt} flags {Flags}")]
    private static partial void LogDelivered(ILogger logger, VsockOp op, ulong srcCid, uint srcPort, ulong dstCid, uint dstPort, uint len, uint bufAlloc, uint fwdCnt, uint flags);
}
