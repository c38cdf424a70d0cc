namespace Virtio.Vsock.Device;

/// <summary>
/// Counters of one device, in the spirit of Firecracker's vsock metrics. Every update is one
/// <see cref="Interlocked"/> call (mostly from the device's loop thread; kicks come from the transport's
/// threads) and no lock is taken; any thread may read them at any time (<c>Volatile.Read</c>).
/// Directions are named after the queues: TX is guest to host, RX host to guest. Values only grow,
/// except across <see cref="VsockDevice.Dispose"/>, and are read individually (not as an atomic snapshot).
/// </summary>
public sealed class VsockMetrics
{
    internal long TxPacketsField;
    internal long TxBytesField;
    internal long RxPacketsField;
    internal long RxBytesField;
    internal long TxInvalidChainsField;
    internal long RxInvalidChainsField;
    internal long DroppedPacketsField;
    internal long RstSentField;
    internal long RstReceivedField;
    internal long ConnectionsOpenedField;
    internal long ConnectionsClosedField;
    internal long ConnectionsResetField;
    internal long ConnectionsRefusedField;
    internal long ConnectTimeoutsField;
    internal long ShutdownTimeoutsField;
    internal long CreditStallsField;
    internal long RxBurstsField;
    internal long CreditViolationsField;
    internal long CreditUpdatesSentField;
    internal long CreditRequestsSentField;
    internal long TxQueueStallsField;
    internal long HostWriteErrorsField;
    internal long HostReadErrorsField;
    internal long EventsSentField;
    internal long KicksField;
    internal long NotificationsField;
    internal long RepeatedNotificationsField;
    internal long LoopTurnsField;
    internal long EndpointFaultsField;
    internal long DeviceFaultsField;
    internal long BufferLimitResetsField;
    internal Func<long>? BufferedBytesSource;
    internal AdaptivePolling? Polling;

    /// <summary>Packets the guest sent (TX chains parsed successfully). TX is guest to host, as the queue is named.</summary>
    public long TxPackets => Volatile.Read(ref TxPacketsField);

    /// <summary>
    /// Payload bytes the guest sent in RW packets that were accepted: guest to host, named after the TX queue.
    /// A connection's credit counter for the same bytes keeps Linux's name from the device's end, <c>rx_cnt</c>
    /// (README, "Directions, one convention").
    /// </summary>
    public long TxBytes => Volatile.Read(ref TxBytesField);

    /// <summary>Packets the device wrote into RX buffers. RX is host to guest, as the queue is named.</summary>
    public long RxPackets => Volatile.Read(ref RxPacketsField);

    /// <summary>
    /// Payload bytes the device wrote into RX buffers: host (or sibling guest) to guest, named after the RX queue.
    /// A connection's credit counter for the same bytes keeps Linux's name from the device's end, <c>tx_cnt</c>
    /// (README, "Directions, one convention").
    /// </summary>
    public long RxBytes => Volatile.Read(ref RxBytesField);

    /// <summary>TX chains that could not be parsed (returned to the used ring with length 0).</summary>
    public long TxInvalidChains => Volatile.Read(ref TxInvalidChainsField);

    /// <summary>RX chains that could not be used (returned to the used ring with length 0).</summary>
    public long RxInvalidChains => Volatile.Read(ref RxInvalidChainsField);

    /// <summary>Parsed packets dropped without an answer (wrong source CID, data after a shutdown...).</summary>
    public long DroppedPackets => Volatile.Read(ref DroppedPacketsField);

    /// <summary>RST packets sent to the guest.</summary>
    public long RstSent => Volatile.Read(ref RstSentField);

    /// <summary>RST packets received from the guest.</summary>
    public long RstReceived => Volatile.Read(ref RstReceivedField);

    /// <summary>Connections that reached the established state.</summary>
    public long ConnectionsOpened => Volatile.Read(ref ConnectionsOpenedField);

    /// <summary>Connections removed after an orderly close.</summary>
    public long ConnectionsClosed => Volatile.Read(ref ConnectionsClosedField);

    /// <summary>Connections removed by a reset (either side, errors, timeouts, transport reset).</summary>
    public long ConnectionsReset => Volatile.Read(ref ConnectionsResetField);

    /// <summary>Connection requests refused (no listener, limit, backend failure), either direction.</summary>
    public long ConnectionsRefused => Volatile.Read(ref ConnectionsRefusedField);

    /// <summary>Connection attempts that timed out.</summary>
    public long ConnectTimeouts => Volatile.Read(ref ConnectTimeoutsField);

    /// <summary>Closes that timed out waiting for the peer's RST or for buffered data to drain.</summary>
    public long ShutdownTimeouts => Volatile.Read(ref ShutdownTimeoutsField);

    /// <summary>Times host-to-guest data waited for guest credit.</summary>
    public long CreditStalls => Volatile.Read(ref CreditStallsField);

    /// <summary>Host reads that filled more than one RX buffer at once (one system call for a burst of stream data).</summary>
    public long RxBursts => Volatile.Read(ref RxBurstsField);

    /// <summary>Guest RW packets beyond the credit we gave (the connection was reset).</summary>
    public long CreditViolations => Volatile.Read(ref CreditViolationsField);

    /// <summary>CREDIT_UPDATE packets sent.</summary>
    public long CreditUpdatesSent => Volatile.Read(ref CreditUpdatesSentField);

    /// <summary>CREDIT_REQUEST packets sent.</summary>
    public long CreditRequestsSent => Volatile.Read(ref CreditRequestsSentField);

    /// <summary>Times TX processing paused because replies could not be queued until the guest posts RX buffers.</summary>
    public long TxQueueStalls => Volatile.Read(ref TxQueueStallsField);

    /// <summary>Errors writing to host endpoints.</summary>
    public long HostWriteErrors => Volatile.Read(ref HostWriteErrorsField);

    /// <summary>Errors reading from host endpoints.</summary>
    public long HostReadErrors => Volatile.Read(ref HostReadErrorsField);

    /// <summary>Events written to the event queue.</summary>
    public long EventsSent => Volatile.Read(ref EventsSentField);

    /// <summary>Queue kicks received.</summary>
    public long Kicks => Volatile.Read(ref KicksField);

    /// <summary>Times the device loop woke up and ran a turn (an idle device adds none).</summary>
    public long LoopTurns => Volatile.Read(ref LoopTurnsField);

    /// <summary>Times the device loop slept waiting for work (each ended by a wake-up: a context switch, and on a
    /// virtual machine host often a halted CPU to resume).</summary>
    public long LoopSleeps => Polling?.Slept ?? 0;

    /// <summary>Times the device loop's polling found its next event before it slept (see
    /// <see cref="VsockDeviceOptions.PollMax"/>): wake-ups it did not need.</summary>
    public long LoopPolledWakeups => Polling?.Caught ?? 0;

    /// <summary>Used-buffer notifications signalled to the driver.</summary>
    public long Notifications => Volatile.Read(ref NotificationsField);

    /// <summary>
    /// Used-buffer notifications sent again because the driver (EVENT_IDX) had not taken every used buffer and had not
    /// moved for a whole watch period: notifications lost on their way, or a driver that stopped.
    /// </summary>
    public long RepeatedNotifications => Volatile.Read(ref RepeatedNotificationsField);

    /// <summary>Exceptions thrown by host endpoints (each reset its own connection and nothing else).</summary>
    public long EndpointFaults => Volatile.Read(ref EndpointFaultsField);

    /// <summary>Unexpected faults in the device's own processing (each stopped the device until its next reset).</summary>
    public long DeviceFaults => Volatile.Read(ref DeviceFaultsField);

    /// <summary>Connections reset because the device's buffered-bytes limit (<see cref="VsockDeviceOptions.MaxBufferedBytes"/>) was reached.</summary>
    public long BufferLimitResets => Volatile.Read(ref BufferLimitResetsField);

    /// <summary>Bytes the device holds for its guest now (connection buffers and sibling payloads); a gauge.</summary>
    public long BufferedBytes => BufferedBytesSource?.Invoke() ?? 0;
}
