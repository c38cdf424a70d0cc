using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

namespace Virtio.Vsock.Device;

/// <summary>
/// Per-connection log events of the device's host connections: open, close, reset with its reason,
/// credit stalls and unowned packets at debug; every packet at trace. Source-generated
/// (<see cref="LoggerMessageAttribute"/>): when the level is off a call costs a null check and an
/// <see cref="ILogger.IsEnabled"/> call, with no allocation, boxing or formatting.
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> the event ids 220-229 and the message texts.</para>
/// <para><b>Must never:</b> build strings or allocate before the level check, or be called with anything
/// computed only for the log (callers pass fields they already have).</para>
/// </remarks>
internal static partial class ConnectionLog
{
    /// <summary>A connection was created.</summary>
    /// <param name="logger">The device's logger, or <see langword="null"/>.</param>
    /// <param name="key">The connection.</param>
    /// <param name="type">Its socket type.</param>
    /// <param name="guestInitiated">Whether the guest asked for it (REQUEST) rather than the host.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Opened(ILogger? logger, ConnectionKey key, VsockType type, bool guestInitiated)
    {
        if (logger is not null)
            LogOpened(logger, key.PeerCid, key.PeerPort, key.LocalCid, key.LocalPort, type, guestInitiated ? "guest" : "host");
    }

    /// <summary>A connection left the table (orderly close, guest RST, or device/transport reset).</summary>
    /// <param name="logger">The device's logger, or <see langword="null"/>.</param>
    /// <param name="key">The connection.</param>
    /// <param name="state">The state it was in.</param>
    /// <param name="orderly">Whether it counts as an orderly close.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Closed(ILogger? logger, ConnectionKey key, ConnectionState state, bool orderly)
    {
        if (logger is not null)
            LogClosed(logger, key.PeerCid, key.PeerPort, key.LocalCid, key.LocalPort, state, orderly);
    }

    /// <summary>The device resets a connection (RST to the guest, host endpoint aborted).</summary>
    /// <param name="logger">The device's logger, or <see langword="null"/>.</param>
    /// <param name="key">The connection.</param>
    /// <param name="state">The state it was in.</param>
    /// <param name="reason">Why (a constant string).</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Reset(ILogger? logger, ConnectionKey key, ConnectionState state, string reason)
    {
        if (logger is not null)
            LogReset(logger, key.PeerCid, key.PeerPort, key.LocalCid, key.LocalPort, state, reason);
    }

    /// <summary>Host data waits because the guest's credit is too low; a CREDIT_REQUEST goes out.</summary>
    /// <param name="logger">The device's logger, or <see langword="null"/>.</param>
    /// <param name="key">The connection.</param>
    /// <param name="peerFree">The guest's free credit in bytes.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void CreditStall(ILogger? logger, ConnectionKey key, uint peerFree)
    {
        if (logger is not null)
            LogCreditStall(logger, key.PeerCid, key.PeerPort, key.LocalCid, key.LocalPort, peerFree);
    }

    /// <summary>A guest packet nobody owns is answered with RST.</summary>
    /// <param name="logger">The device's logger, or <see langword="null"/>.</param>
    /// <param name="packet">The packet.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Unowned(ILogger? logger, VsockPacket packet)
    {
        if (logger is not null)
            LogUnowned(logger, packet.Op, packet.Type, packet.SrcCid, packet.SrcPort, packet.DstCid, packet.DstPort);
    }

    /// <summary>One packet from the guest (TX queue).</summary>
    /// <param name="logger">The device's logger, or <see langword="null"/>.</param>
    /// <param name="packet">The packet.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void GuestPacket(ILogger? logger, VsockPacket packet)
    {
        if (logger is not null && logger.IsEnabled(LogLevel.Trace))
            LogGuestPacket(logger, packet.Op, packet.SrcCid, packet.SrcPort, packet.DstCid, packet.DstPort, packet.Len, packet.BufAlloc, packet.FwdCnt, packet.Flags);
    }

    /// <summary>One packet to the guest (RX queue).</summary>
    /// <param name="logger">The device's logger, or <see langword="null"/>.</param>
    /// <param name="packet">The packet as written.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void DevicePacket(ILogger? logger, VsockPacket packet)
    {
        if (logger is not null && logger.IsEnabled(LogLevel.Trace))
            LogDevicePacket(logger, packet.Op, packet.SrcCid, packet.SrcPort, packet.DstCid, packet.DstPort, packet.Len, packet.BufAlloc, packet.FwdCnt, packet.Flags);
    }

    [LoggerMessage(EventId = 220, Level = LogLevel.Debug, Message = "vsock: connection guest {GuestCid}:{GuestPort} <-> host {HostCid}:{HostPort} ({Type}) opened by the {Initiator}")]
    private static partial void LogOpened(ILogger logger, ulong guestCid, uint guestPort, ulong hostCid, uint hostPort, VsockType type, string initiator);

    [LoggerMessage(EventId = 221, Level = LogLevel.Debug, Message = "vsock: connection guest {GuestCid}:{GuestPort} <-> host {HostCid}:{HostPort} closed in state {State} (orderly: {Orderly})")]
    private static partial void LogClosed(ILogger logger, ulong guestCid, uint guestPort, ulong hostCid, uint hostPort, ConnectionState state, bool orderly);

    [LoggerMessage(EventId = 222, Level = LogLevel.Debug, Message = "vsock: connection guest {GuestCid}:{GuestPort} <-> host {HostCid}:{HostPort} reset in state {State}: {Reason}")]
    private static partial void LogReset(ILogger logger, ulong guestCid, uint guestPort, ulong hostCid, uint hostPort, ConnectionState state, string reason);

    [LoggerMessage(EventId = 223, Level = LogLevel.Debug, Message = "vsock: connection guest {GuestCid}:{GuestPort} <-> host {HostCid}:{HostPort} credit stall: guest has {PeerFree} bytes free, asking for credit")]
    private static partial void LogCreditStall(ILogger logger, ulong guestCid, uint guestPort, ulong hostCid, uint hostPort, uint peerFree);

    [LoggerMessage(EventId = 224, Level = LogLevel.Debug, Message = "vsock: {Op} ({Type}) {SrcCid}:{SrcPort} -> {DstCid}:{DstPort} has no connection: RST")]
    private static partial void LogUnowned(ILogger logger, VsockOp op, VsockType type, ulong srcCid, uint srcPort, ulong dstCid, uint dstPort);

    [LoggerMessage(EventId = 225, Level = LogLevel.Trace, Message = "vsock: TX {Op} {SrcCid}:{SrcPort} -> {DstCid}:{DstPort} len {Len} buf_alloc {BufAlloc} fwd_cnt {FwdCnt} flags {Flags}")]
    private static partial void LogGuestPacket(ILogger logger, VsockOp op, ulong srcCid, uint srcPort, ulong dstCid, uint dstPort, uint len, uint bufAlloc, uint fwdCnt, uint flags);

    [LoggerMessage(EventId = 226, Level = LogLevel.Trace, Message = "vsock: RX {Op} {SrcCid}:{SrcPort} -> {DstCid}:{DstPort} len {Len} buf_alloc {BufAlloc} fwd_cnt {FwdCnt} flags {Flags}")]
    private static partial void LogDevicePacket(ILogger logger, VsockOp op, ulong srcCid, uint srcPort, ulong dstCid, uint dstPort, uint len, uint bufAlloc, uint fwdCnt, uint flags);
}
