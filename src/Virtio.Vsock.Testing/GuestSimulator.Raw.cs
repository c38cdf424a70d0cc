using Virtio.Queue.Testing;
using Virtio.Vsock.Device;

namespace Virtio.Vsock.Testing;

/// <summary>
/// Raw access for hostile-input tests: packets with any header, whole TX batches, hand-built (malformed)
/// chains, and ports whose packets are recorded instead of answered. It owns the raw queue and the claimed
/// ports; it must never build a packet a socket would (sockets go through the socket layer) and never
/// write the rings outside <c>Sync</c>.
/// </summary>
public sealed partial class GuestSimulator
{
    /// <summary>Sends a raw packet as the guest (any header, for hostile-input tests). <c>len</c> is set from the payload unless <paramref name="keepLen"/>.</summary>
    /// <param name="header">The header.</param>
    /// <param name="payload">The payload.</param>
    /// <param name="keepLen">Keep the header's <c>len</c> as given.</param>
    public void SendRaw(VsockHeader header, ReadOnlySpan<byte> payload = default, bool keepLen = false)
    {
        if (!keepLen)
        {
            header.Len = (uint)payload.Length;
        }

        lock (Sync)
        {
            _rawQueue.Enqueue((header, payload.ToArray()));
        }

        _wake.Set();
    }

    /// <summary>Sends raw packets as the guest in one TX batch: all their chains are published before one kick, so the
    /// device sees them in the same turn (<c>len</c> is set from each payload).</summary>
    /// <param name="packets">The headers and payloads, in order.</param>
    public void SendRawBatch(params ReadOnlySpan<(VsockHeader Header, byte[] Payload)> packets)
    {
        lock (Sync)
        {
            foreach ((VsockHeader header, byte[] payload) in packets)
            {
                _rawQueue.Enqueue((header with { Len = (uint)payload.Length }, payload));
            }
        }

        _wake.Set();
    }

    /// <summary>Packets the device sends to guest port <paramref name="port"/> go to <see cref="RawReceived"/> and get no automatic answer.</summary>
    /// <param name="port">The guest port a raw test uses.</param>
    public void ClaimRawPort(uint port)
    {
        lock (Sync)
        {
            _rawPorts.Add(port);
        }
    }

    /// <summary>Waits for a packet in <see cref="RawReceived"/> matching <paramref name="match"/>.</summary>
    /// <param name="match">The predicate.</param>
    /// <param name="timeout">How long to wait.</param>
    /// <returns>The header, or null on timeout.</returns>
    public async Task<VsockHeader?> WaitRawAsync(Func<VsockHeader, bool> match, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(match);
        DateTime deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            foreach (VsockHeader header in RawReceived)
            {
                if (match(header))
                {
                    return header;
                }
            }

            await Task.Delay(2).ConfigureAwait(false);
        }

        return null;
    }

    /// <summary>Posts a raw TX chain built by <paramref name="build"/> (for malformed-chain tests) and kicks.</summary>
    /// <param name="build">Writes descriptors through the TX driver and returns nothing; the chain is published.</param>
    public void PostRawTxChain(Action<TestDriver, GuestAllocator> build)
    {
        ArgumentNullException.ThrowIfNull(build);
        lock (Sync)
        {
            build(_txDriver, _allocator);
            PublishAndKick(_txDriver, VsockQueueIndex.Tx);
        }
    }
}
