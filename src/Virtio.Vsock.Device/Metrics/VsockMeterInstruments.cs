using System.Diagnostics.Metrics;
using Virtio.Vsock.Device.Siblings;

namespace Virtio.Vsock.Device;

/// <summary>
/// The instruments of the <see cref="VsockMeter"/>: names, units, descriptions and how each reads a registered
/// device. Creates observable instruments only; must never record on a device's hot path.
/// </summary>
internal static class VsockMeterInstruments
{
    private const string Guest = VsockMeter.GuestToHost;
    private const string Host = VsockMeter.HostToGuest;

    /// <summary>Creates every instrument on <paramref name="meter"/>.</summary>
    /// <param name="meter">The meter.</param>
    /// <param name="sources">Lists the registered devices at collection time.</param>
    public static void Create(Meter meter, Func<VsockMeterSource[]> sources)
    {
        // Device counters (VsockMetrics).
        Counter(meter, sources, "vsock.packets", "{packet}", "Packets through the device's data queues",
            (Guest, s => s.Device.Metrics.TxPackets), (Host, s => s.Device.Metrics.RxPackets));
        Counter(meter, sources, "vsock.bytes", "By", "Payload bytes through the device's data queues",
            (Guest, s => s.Device.Metrics.TxBytes), (Host, s => s.Device.Metrics.RxBytes));
        Counter(meter, sources, "vsock.invalid_chains", "{chain}", "Descriptor chains that could not be used",
            (Guest, s => s.Device.Metrics.TxInvalidChains), (Host, s => s.Device.Metrics.RxInvalidChains));
        Counter(meter, sources, "vsock.rst", "{packet}", "RST packets",
            (Guest, s => s.Device.Metrics.RstReceived), (Host, s => s.Device.Metrics.RstSent));
        Counter(meter, sources, "vsock.dropped_packets", "{packet}", "Guest packets dropped without an answer", s => s.Device.Metrics.DroppedPackets);
        Counter(meter, sources, "vsock.connections.opened", "{connection}", "Connections that were established", s => s.Device.Metrics.ConnectionsOpened);
        Counter(meter, sources, "vsock.connections.closed", "{connection}", "Connections closed in order", s => s.Device.Metrics.ConnectionsClosed);
        Counter(meter, sources, "vsock.connections.reset", "{connection}", "Connections ended by a reset", s => s.Device.Metrics.ConnectionsReset);
        Counter(meter, sources, "vsock.connections.refused", "{connection}", "Connection requests refused", s => s.Device.Metrics.ConnectionsRefused);
        Counter(meter, sources, "vsock.connect_timeouts", "{connection}", "Connection attempts that timed out", s => s.Device.Metrics.ConnectTimeouts);
        Counter(meter, sources, "vsock.shutdown_timeouts", "{connection}", "Closes that timed out", s => s.Device.Metrics.ShutdownTimeouts);
        Counter(meter, sources, "vsock.credit.stalls", "{stall}", "Times host-to-guest data waited for guest credit", s => s.Device.Metrics.CreditStalls);
        Counter(meter, sources, "vsock.rx.bursts", "{read}", "Host reads that filled more than one RX buffer at once", s => s.Device.Metrics.RxBursts);
        Counter(meter, sources, "vsock.credit.violations", "{packet}", "Guest packets beyond the credit given", s => s.Device.Metrics.CreditViolations);
        Counter(meter, sources, "vsock.credit.updates_sent", "{packet}", "CREDIT_UPDATE packets sent", s => s.Device.Metrics.CreditUpdatesSent);
        Counter(meter, sources, "vsock.credit.requests_sent", "{packet}", "CREDIT_REQUEST packets sent", s => s.Device.Metrics.CreditRequestsSent);
        Counter(meter, sources, "vsock.tx_queue_stalls", "{stall}", "Times TX processing paused for RX buffers", s => s.Device.Metrics.TxQueueStalls);
        Counter(meter, sources, "vsock.host.io_errors", "{error}", "Errors on host endpoints",
            (Guest, s => s.Device.Metrics.HostWriteErrors), (Host, s => s.Device.Metrics.HostReadErrors));
        Counter(meter, sources, "vsock.events_sent", "{event}", "Events written to the event queue", s => s.Device.Metrics.EventsSent);
        Counter(meter, sources, "vsock.kicks", "{kick}", "Queue kicks received", s => s.Device.Metrics.Kicks);
        Counter(meter, sources, "vsock.notifications", "{notification}", "Used-buffer notifications sent", s => s.Device.Metrics.Notifications);
        Counter(meter, sources, "vsock.notifications.repeated", "{notification}", "Used-buffer notifications sent again: the driver had not taken its used buffers nor moved for a second", s => s.Device.Metrics.RepeatedNotifications);
        Counter(meter, sources, "vsock.loop_turns", "{turn}", "Device loop turns", s => s.Device.Metrics.LoopTurns);
        Counter(meter, sources, "vsock.loop_sleeps", "{wait}", "Times the device loop slept waiting for work", s => s.Device.Metrics.LoopSleeps);
        Counter(meter, sources, "vsock.loop_polled_wakeups", "{wait}", "Times the device loop's polling found work before it slept", s => s.Device.Metrics.LoopPolledWakeups);

        // Sibling relay (guest to guest).
        SiblingCounter(meter, sources, "vsock.sibling.packets", "{packet}", "Packets between sibling guests",
            (Guest, m => m.PacketsSent), (Host, m => m.PacketsDelivered));
        SiblingCounter(meter, sources, "vsock.sibling.bytes", "By", "Payload bytes between sibling guests",
            (Guest, m => m.BytesSent), (Host, m => m.BytesDelivered));
        SiblingCounter(meter, sources, "vsock.sibling.unreachable", "{packet}", "Packets for an unreachable sibling CID", (null, m => m.Unreachable));
        SiblingCounter(meter, sources, "vsock.sibling.access_denied", "{connection}", "Sibling connection requests refused by the access rules", (null, m => m.AccessDenied));
        SiblingCounter(meter, sources, "vsock.sibling.route_full", "{connection}", "Sibling connections reset on a full route", (null, m => m.RouteFull));
        SiblingCounter(meter, sources, "vsock.sibling.credit_violations", "{connection}", "Sibling connections reset for a credit violation", (null, m => m.CreditViolations));
        SiblingCounter(meter, sources, "vsock.sibling.protocol_errors", "{connection}", "Sibling connections reset for a protocol error", (null, m => m.ProtocolErrors));
        SiblingCounter(meter, sources, "vsock.sibling.flow_limit", "{connection}", "Sibling requests refused at the connection limit", (null, m => m.FlowLimit));
        SiblingCounter(meter, sources, "vsock.sibling.connect_timeouts", "{connection}", "Sibling connection attempts that timed out", (null, m => m.ConnectTimeouts));
        SiblingCounter(meter, sources, "vsock.sibling.peer_resets", "{connection}", "Sibling connections reset by the peer device's reset", (null, m => m.PeerResetFlows));
        SiblingCounter(meter, sources, "vsock.sibling.stale_packets", "{packet}", "Queued sibling packets dropped after a reset", (null, m => m.StalePackets));
        SiblingCounter(meter, sources, "vsock.sibling.rst_dropped", "{packet}", "RSTs for a sibling that could not be queued", (null, m => m.RstToPeerDropped));
        meter.CreateObservableUpDownCounter("vsock.sibling.queued_bytes", () => Each(sources(), s => s.Device.SiblingMetrics is { } m ? m.QueuedBytes : null), "By", "Bytes queued for sibling guests now");

        // Unix backend (host side).
        HostCounter(meter, sources, "vsock.host.connects", "{connection}", "Connections through the host socket backend, by who initiated and outcome",
            (c => c.HostConnects, "host", "ok"), (c => c.HostConnectsFailed, "host", "failed"),
            (c => c.GuestConnects, "guest", "ok"), (c => c.GuestConnectsRefused, "guest", "refused"));
        HostCounter(meter, sources, "vsock.access.denied", "{connection}", "Connection attempts refused by the access rules, by who initiated",
            (c => c.HostConnectsDenied, "host", "denied"), (c => c.GuestConnectsDenied, "guest", "denied"));
        HostCounter(meter, sources, "vsock.host.handshake_failures", "{connection}", "Host connections closed before their CONNECT line was handled",
            (c => c.StreamHandshakeFailures, "stream", null), (c => c.SeqPacketHandshakeFailures, "seqpacket", null));
        meter.CreateObservableUpDownCounter("vsock.host.open_sockets", () => Each(sources(), s => s.HasHost ? s.Host.OpenSockets : null), "{socket}", "Host sockets the backend holds now");

        // Gauges from a device snapshot.
        meter.CreateObservableUpDownCounter("vsock.connections.live", () => LiveConnections(sources()), "{connection}", "Live connections, with host programs (peer=host) and sibling guests (peer=sibling)");
        meter.CreateObservableUpDownCounter("vsock.buffered_bytes", () => Each(sources(), s => s.CurrentSnapshot()?.BufferedToHost), "By", "Bytes from the guest held for host sockets now");
        meter.CreateObservableUpDownCounter("vsock.connections.credit_stalled", () => Each(sources(), s => s.CurrentSnapshot()?.StalledOnCredit), "{connection}", "Connections waiting for guest credit now");
        meter.CreateObservableGauge("vsock.rx_buffers.available", () => Each(sources(), s => s.CurrentSnapshot()?.RxBuffersAvailable), "{buffer}", "RX buffers the guest posted and the device has not used");
    }

    private static void Counter(Meter meter, Func<VsockMeterSource[]> sources, string name, string unit, string description, Func<VsockMeterSource, long> read) =>
        meter.CreateObservableCounter(name, () => Each(sources(), s => read(s)), unit, description);

    private static void Counter(Meter meter, Func<VsockMeterSource[]> sources, string name, string unit, string description, params (string Direction, Func<VsockMeterSource, long> Read)[] sides) =>
        meter.CreateObservableCounter(name, () =>
        {
            var result = new List<Measurement<long>>();
            foreach (VsockMeterSource source in sources())
            {
                foreach ((string direction, Func<VsockMeterSource, long> read) in sides)
                {
                    result.Add(new Measurement<long>(read(source), source.Tag, new(VsockMeter.DirectionTag, direction)));
                }
            }

            return result;
        }, unit, description);

    private static void SiblingCounter(Meter meter, Func<VsockMeterSource[]> sources, string name, string unit, string description, params (string? Direction, Func<SiblingMetrics, long> Read)[] sides) =>
        meter.CreateObservableCounter(name, () =>
        {
            var result = new List<Measurement<long>>();
            foreach (VsockMeterSource source in sources())
            {
                if (source.Device.SiblingMetrics is not { } metrics)
                {
                    continue;
                }

                foreach ((string? direction, Func<SiblingMetrics, long> read) in sides)
                {
                    result.Add(direction is null
                        ? new Measurement<long>(read(metrics), source.Tag)
                        : new Measurement<long>(read(metrics), source.Tag, new(VsockMeter.DirectionTag, direction)));
                }
            }

            return result;
        }, unit, description);

    private static void HostCounter(Meter meter, Func<VsockMeterSource[]> sources, string name, string unit, string description, params (Func<HostBackendCounters, long> Read, string First, string? Outcome)[] parts) =>
        meter.CreateObservableCounter(name, () =>
        {
            var result = new List<Measurement<long>>();
            foreach (VsockMeterSource source in sources())
            {
                if (!source.HasHost)
                {
                    continue;
                }

                HostBackendCounters counters = source.Host;
                foreach ((Func<HostBackendCounters, long> read, string first, string? outcome) in parts)
                {
                    result.Add(outcome is null
                        ? new Measurement<long>(read(counters), source.Tag, new("listener", first))
                        : new Measurement<long>(read(counters), source.Tag, new("initiator", first), new("outcome", outcome)));
                }
            }

            return result;
        }, unit, description);

    private static List<Measurement<long>> Each(VsockMeterSource[] sources, Func<VsockMeterSource, long?> read)
    {
        var result = new List<Measurement<long>>(sources.Length);
        foreach (VsockMeterSource source in sources)
        {
            if (read(source) is long value)
            {
                result.Add(new Measurement<long>(value, source.Tag));
            }
        }

        return result;
    }

    private static List<Measurement<long>> LiveConnections(VsockMeterSource[] sources)
    {
        var result = new List<Measurement<long>>(sources.Length * 2);
        foreach (VsockMeterSource source in sources)
        {
            result.Add(new Measurement<long>(source.Device.ConnectionCount, source.Tag, new("peer", "host")));
            result.Add(new Measurement<long>(source.Device.SiblingConnectionCount, source.Tag, new("peer", "sibling")));
        }

        return result;
    }
}
