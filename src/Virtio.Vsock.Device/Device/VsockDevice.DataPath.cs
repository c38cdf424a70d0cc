using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Virtio.Memory;
using Virtio.Queue;

namespace Virtio.Vsock.Device;

/// <summary>
/// The data path of <see cref="VsockDevice"/>: one loop turn drains TX (every chain back to the used ring),
/// fills RX buffers with what connections and sibling guests owe the guest, writes events, publishes used
/// elements once per batch and notifies the driver as EVENT_IDX allows.
/// </summary>
/// <remarks>
/// <para><b>Owns:</b> nothing of its own: this part of the class only runs on the loop thread, over the queues,
/// packets and flags the control part (VsockDevice.cs) sets up. <b>Must never:</b> allocate or throw on the
/// per-chain path (errors are values; a broken ring stops its queue), or run more than a bounded batch per turn.</para>
/// </remarks>
public sealed partial class VsockDevice
{
    private void Turn(long now)
    {
        Interlocked.Increment(ref Metrics.LoopTurnsField);
        long bytesBefore = Metrics.TxBytes + Metrics.RxBytes;
        int kicks = Interlocked.Exchange(ref _kickMask, 0);
        GuestMemory? memory = _memory;
        if (memory is not null)
        {
            _muxer.RunTimers(now);
            _relay?.RunTimers(now);
            bool txKicked = (kicks & (1 << VsockQueueIndex.Tx)) != 0;
            bool again = false;
            for (int round = 0; round < 4; round++)
            {
                bool txMore = false;
                if (txKicked || _txBlocked)
                {
                    txMore = ProcessTx(memory, now);
                    txKicked = false;
                }

                bool rxProgress = ProcessRx(memory, out bool rxMore);

                // TX still blocked on owed RSTs while RX keeps draining them: not idle, even after the
                // last round (no kick would come: the RX buffers are there, TX notifications are off).
                again = txMore || rxMore || (_txBlocked && rxProgress);
                if (!(_txBlocked && rxProgress))
                {
                    break;
                }
            }

            if (again)
            {
                // A full batch: come back after other work had its turn.
                Interlocked.Or(ref _kickMask, (1 << VsockQueueIndex.Tx) | (1 << VsockQueueIndex.Rx));
                _loop.Wake();
            }

            if ((kicks & (1 << VsockQueueIndex.Event)) != 0 || _pendingTransportReset)
            {
                ProcessEvent();
            }

            WatchNotifications(memory, now);
        }

        if (_relay is not null)
        {
            Volatile.Write(ref _siblingConnectionCount, _relay.FlowCount);
        }

        // A turn that moved a bulk transfer's worth of payload: its next event is better taken late, with more work
        // behind it, than early and alone (see AdaptivePolling.BulkTurnBytes).
        _loop.PollingPaused = Metrics.TxBytes + Metrics.RxBytes - bytesBefore >= AdaptivePolling.BulkTurnBytes;
    }

    /// <returns>Whether TX stopped at the batch limit with more chains waiting.</returns>
    private bool ProcessTx(GuestMemory memory, long now)
    {
        const int q = VsockQueueIndex.Tx;
        if (!_running[q] || _broken[q])
        {
            return false;
        }

        VirtQueue queue = _queues[q];
        queue.DisableNotification(memory);
        _txBlocked = false;
        int budget = _options.TxBatch;
        bool used = false;
        bool more = false;
        while (true)
        {
            if (_muxer.ResetQueueFull)
            {
                Interlocked.Increment(ref Metrics.TxQueueStallsField);
                _txBlocked = true;
                break;
            }

            if (budget-- == 0)
            {
                more = true;
                break;
            }

            if (!TryPop(q, memory, keepNotificationsOff: true, out DescriptorChain chain))
            {
                break;
            }

            VsockPacketError parse = _txPacket.TryParseTx(memory, ref chain, _options.MaxPacketData);
            if (parse.IsError)
            {
                Interlocked.Increment(ref Metrics.TxInvalidChainsField);
                if (_logger is not null)
                {
                    LogBadChain(_logger, "TX", chain.HeadIndex, parse);
                }
            }
            else
            {
                _tap?.OnPacket(_txPacket, fromGuest: true);
                _muxer.HandleTx(ref _txPacket, now);
            }

            queue.AddUsedDeferred(memory, chain.HeadIndex, 0);
            used = true;
        }

        // Data packets held back to go to the host together are written before their chains go back to the guest.
        _muxer.FlushTxRun();
        if (used)
        {
            Publish(q, memory);
        }

        return more;
    }

    /// <returns>Whether any RX buffer was used.</returns>
    private bool ProcessRx(GuestMemory memory, out bool more)
    {
        const int q = VsockQueueIndex.Rx;
        more = false;
        if (!_running[q] || _broken[q])
        {
            return false;
        }

        VirtQueue queue = _queues[q];
        bool used = false;
        int budget = RxBudget;
        while (_muxer.HasRxWork || (_relay?.HasRxWork ?? false))
        {
            if (budget-- == 0)
            {
                more = true;
                break;
            }

            if (!_rxHeld)
            {
                if (!TryPop(q, memory, keepNotificationsOff: false, out DescriptorChain chain))
                {
                    // Work waits for buffers (a kick is asked for), or the ring broke.
                    break;
                }

                VsockPacketError parse = _rxPacket.TryParseRx(memory, ref chain, _options.MaxPacketData);
                if (parse.IsError)
                {
                    Interlocked.Increment(ref Metrics.RxInvalidChainsField);
                    if (_logger is not null)
                    {
                        LogBadChain(_logger, "RX", chain.HeadIndex, parse);
                    }
                    queue.AddUsedDeferred(memory, chain.HeadIndex, 0);
                    used = true;
                    continue;
                }

                _rxHeld = true;
            }

            _rxBatch.Begin(_rxPacket);
            uint length = FillRx(_rxPacket);
            if (length == 0)
            {
                GiveBackExtras(queue, 0);
                break;
            }

            _rxHeld = false;
            Interlocked.Increment(ref Metrics.RxPacketsField);
            _tap?.OnPacket(_rxPacket, fromGuest: false);
            queue.AddUsedDeferred(memory, _rxPacket.HeadIndex, length);
            used = true;
            for (int i = 0; i < _rxBatch.Filled; i++)
            {
                VsockPacket extra = _rxBatch.Extra(i);
                Interlocked.Increment(ref Metrics.RxPacketsField);
                _tap?.OnPacket(extra, fromGuest: false);
                queue.AddUsedDeferred(memory, extra.HeadIndex, _rxBatch.ExtraLengths[i]);
            }

            GiveBackExtras(queue, _rxBatch.Filled);
        }

        if (used)
        {
            Publish(q, memory);
        }

        return used;
    }

    /// <summary>
    /// Pops the guest's next RX chain and parses it into <paramref name="packet"/>, for a burst of host data
    /// (<see cref="RxBatch"/>). A chain that does not parse is left in the ring (the normal path reports it).
    /// </summary>
    private bool TakeExtraRx(VsockPacket packet)
    {
        const int q = VsockQueueIndex.Rx;
        GuestMemory? memory = _memory;
        if (memory is null || !TryPop(q, memory, keepNotificationsOff: false, out DescriptorChain chain))
        {
            return false;
        }

        if (packet.TryParseRx(memory, ref chain, _options.MaxPacketData).IsError)
        {
            VirtQueue queue = _queues[q];
            queue.NextAvail = (ushort)(queue.NextAvail - 1);
            return false;
        }

        return true;
    }

    /// <summary>Returns the extra RX buffers a burst took but did not fill (the last ones popped) to the ring.</summary>
    private void GiveBackExtras(VirtQueue queue, int filled)
    {
        int unfilled = _rxBatch.Taken - filled;
        if (unfilled > 0)
        {
            queue.NextAvail = (ushort)(queue.NextAvail - unfilled);
        }
    }

    /// <summary>Fills one RX buffer (and, for a burst of host stream data, more: see <see cref="RxBatch"/>) from host
    /// connections or sibling guests, taking turns.</summary>
    private uint FillRx(VsockPacket rx)
    {
        if (_relay is null)
        {
            return _muxer.FillRx(rx, _rxBatch);
        }

        _rxSiblingsFirst = !_rxSiblingsFirst;
        if (_rxSiblingsFirst)
        {
            uint used = _relay.FillRx(rx);
            return used != 0 ? used : _muxer.FillRx(rx, _rxBatch);
        }
        else
        {
            uint used = _muxer.FillRx(rx, _rxBatch);
            return used != 0 ? used : _relay.FillRx(rx);
        }
    }

    private void ProcessEvent()
    {
        const int q = VsockQueueIndex.Event;
        GuestMemory? memory = _memory;
        if (!_pendingTransportReset || memory is null || !_running[q] || _broken[q])
        {
            return;
        }

        VirtQueue queue = _queues[q];
        for (int attempt = 0; attempt < MaxQueueSize && _pendingTransportReset; attempt++)
        {
            if (!TryPop(q, memory, keepNotificationsOff: false, out DescriptorChain chain))
            {
                return;
            }

            uint written = 0;
            while (chain.TryNext(out Descriptor descriptor, out _))
            {
                if (descriptor.IsWriteOnly && descriptor.Length >= sizeof(uint)
                    && memory.WriteU32(descriptor.Address, (uint)VsockEventId.TransportReset) == MemoryError.None)
                {
                    written = sizeof(uint);
                    break;
                }
            }

            queue.AddUsed(memory, chain.HeadIndex, written);
            if (written != 0)
            {
                _pendingTransportReset = false;
                Interlocked.Increment(ref Metrics.EventsSentField);
            }
        }

        Notify(q, memory);
    }

    /// <summary>
    /// Pops the next chain of queue <paramref name="q"/>. When the ring is empty, notifications are turned back on
    /// and the ring checked once more, so a chain the driver published meanwhile is not left waiting for a kick
    /// that will not come (then, with <paramref name="keepNotificationsOff"/>, they are turned off again while the
    /// device drains). A broken ring stops the queue.
    /// </summary>
    /// <returns>Whether a chain was popped; <see langword="false"/> when the ring is empty (a kick will come) or broken.</returns>
    private bool TryPop(int q, GuestMemory memory, bool keepNotificationsOff, out DescriptorChain chain)
    {
        VirtQueue queue = _queues[q];
        while (!queue.TryPopChain(memory, out chain, out QueueError error))
        {
            if (error != QueueError.None)
            {
                Break(q, error);
                return false;
            }

            queue.EnableNotification(memory, out bool hasMore);
            if (!hasMore)
            {
                return false;
            }

            if (keepNotificationsOff)
            {
                queue.DisableNotification(memory);
            }
        }

        return true;
    }

    private void Publish(int q, GuestMemory memory)
    {
        _queues[q].PublishUsed(memory);
        _publishedSinceWatch = true;
        Notify(q, memory);
    }

    private void Notify(int q, GuestMemory memory)
    {
        if (_queues[q].NeedsNotification(memory))
        {
            Interlocked.Increment(ref Metrics.NotificationsField);
            _queueNotifications[q]++;
            _notifier.NotifyQueue(q);
        }
        else
        {
            _queueSuppressed[q]++;
        }
    }

    private void Break(int q, QueueError error)
    {
        _broken[q] = true;
        if (_logger is not null)
        {
            LogQueueStopped(_logger, q, error);
        }
    }
}
