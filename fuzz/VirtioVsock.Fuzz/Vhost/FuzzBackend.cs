using Vhost.User;
using Virtio.Memory;
using Virtio.Queue;

namespace VirtioVsock.Fuzz.Vhost;

/// <summary>
/// A vhost-user backend shaped like the vsock daemon's (two queues, the same features) that never throws
/// and records every call the connection should not have made: starting a started queue, stopping or
/// enabling one that is not started, a queue configuration that does not fit the memory it was given,
/// a queue index out of range. It touches the memory it gets, so a mapping past the end of a file
/// (SIGBUS) would show.
/// </summary>
internal sealed class FuzzBackend : IVhostUserBackend
{
    private readonly Lock _gate = new();
    private readonly List<string> _violations = [];
    private readonly VringConfig?[] _started;
    private GuestMemory? _memory;

    public FuzzBackend(int queueCount = 2, ushort maxQueueSize = 1024)
    {
        QueueCount = queueCount;
        MaxQueueSize = maxQueueSize;
        _started = new VringConfig?[queueCount];
    }

    public ulong Features => (1UL << 32) | (1UL << 29) | (1UL << 28) | (1UL << 1) | (1UL << 0);

    public VhostUserProtocolFeatures ProtocolFeatures =>
        VhostUserProtocolFeatures.Mq | VhostUserProtocolFeatures.Config | VhostUserProtocolFeatures.ReplyAck
        | VhostUserProtocolFeatures.ConfigureMemSlots | VhostUserProtocolFeatures.ResetDevice | VhostUserProtocolFeatures.Status;

    public int QueueCount { get; }

    public ushort MaxQueueSize { get; }

    /// <summary>Calls the connection should not have made.</summary>
    public IReadOnlyList<string> Violations
    {
        get
        {
            lock (_gate)
            {
                return [.. _violations];
            }
        }
    }

    /// <summary>Whether the backend holds memory or a started queue (after teardown it must not).</summary>
    public bool HoldsState
    {
        get
        {
            lock (_gate)
            {
                return _memory is not null || _started.Any(config => config is not null);
            }
        }
    }

    public void SetFeatures(ulong acked)
    {
        if ((acked & ~Features) != 0)
        {
            Violate($"SetFeatures 0x{acked:x} with bits never offered");
        }
    }

    public bool ReadConfig(uint offset, Span<byte> destination)
    {
        Span<byte> config = stackalloc byte[8];
        config[0] = 3;
        if (offset > (uint)config.Length || destination.Length > config.Length - (int)offset)
        {
            return false;
        }

        config.Slice((int)offset, destination.Length).CopyTo(destination);
        return true;
    }

    public bool WriteConfig(uint offset, ReadOnlySpan<byte> source, bool migration) => false;

    public void SetMemory(GuestMemory? memory)
    {
        lock (_gate)
        {
            _memory?.Release();
            _memory = null;
            if (memory is null)
            {
                return;
            }

            if (!memory.TryAcquire())
            {
                Violate("SetMemory with memory already released");
                return;
            }

            _memory = memory;
            Span<byte> probe = stackalloc byte[1];
            foreach (GuestRegion region in memory.Regions)
            {
                // First and last byte of every region: a mapping past the end of its file faults here.
                if (memory.Read(region.Start, probe) != MemoryError.None || memory.Read(region.Last, probe) != MemoryError.None)
                {
                    Violate($"region {region} of the memory handed over cannot be read");
                }
            }
        }
    }

    public void StartQueue(int index, VringConfig config, IVringNotifier call)
    {
        lock (_gate)
        {
            if ((uint)index >= (uint)QueueCount)
            {
                Violate($"StartQueue {index} out of range");
                return;
            }

            if (_started[index] is not null)
            {
                Violate($"StartQueue {index} while started");
            }

            _started[index] = config;
            if (_memory is null)
            {
                Violate($"StartQueue {index} without memory");
                return;
            }

            var queue = new VirtQueue(MaxQueueSize)
            {
                Size = config.Size,
                DescriptorTable = config.DescriptorTable,
                AvailRing = config.AvailableRing,
                UsedRing = config.UsedRing,
                NextAvail = config.NextAvailableIndex,
                Ready = true,
            };
            QueueError error = queue.Validate(_memory);
            if (error != QueueError.None)
            {
                Violate($"StartQueue {index} with a configuration the memory does not hold: {error}");
            }
            else
            {
                _ = queue.HasAvailable(_memory);
            }
        }

        _ = call.Notify();
    }

    public ushort StopQueue(int index)
    {
        lock (_gate)
        {
            if ((uint)index >= (uint)QueueCount || _started[index] is not { } config)
            {
                Violate($"StopQueue {index} while not started");
                return 0;
            }

            _started[index] = null;
            return config.NextAvailableIndex;
        }
    }

    public void SetQueueEnabled(int index, bool enabled)
    {
        lock (_gate)
        {
            if ((uint)index >= (uint)QueueCount || _started[index] is null)
            {
                Violate($"SetQueueEnabled {index} {enabled} while not started");
            }
        }
    }

    public void Kick(int index)
    {
        if ((uint)index >= (uint)QueueCount)
        {
            Violate($"Kick {index} out of range");
        }
    }

    public void Reset()
    {
        lock (_gate)
        {
            Array.Clear(_started);
            _memory?.Release();
            _memory = null;
        }
    }

    private void Violate(string what)
    {
        lock (_gate)
        {
            _violations.Add(what);
        }
    }
}
