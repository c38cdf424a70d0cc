using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Virtio.Memory;

namespace Vhost.User.Tests;

/// <summary>A device that records what the protocol layer asks of it.</summary>
internal sealed class FakeBackend : IVhostUserBackend
{
    public const ulong VersionOne = 1UL << 32;
    public const ulong EventIdx = 1UL << 29;
    public const ulong Seqpacket = 1UL << 1;

    private readonly Lock _gate = new();
    private readonly List<string> _calls = [];
    private readonly int[] _kicks;
    private GuestMemory? _memory;

    public FakeBackend(int queueCount = 2, ushort maxQueueSize = 256)
    {
        QueueCount = queueCount;
        MaxQueueSize = maxQueueSize;
        _kicks = new int[queueCount];
    }

    public ulong Features { get; set; } = VersionOne | EventIdx | Seqpacket;

    public VhostUserProtocolFeatures ProtocolFeatures { get; set; } =
        VhostUserProtocolFeatures.Mq | VhostUserProtocolFeatures.Config | VhostUserProtocolFeatures.ReplyAck
        | VhostUserProtocolFeatures.ConfigureMemSlots | VhostUserProtocolFeatures.ResetDevice;

    public int QueueCount { get; }

    public ushort MaxQueueSize { get; }

    /// <summary>The configuration space: le64 guest_cid = 3.</summary>
    public byte[] Config { get; } = [3, 0, 0, 0, 0, 0, 0, 0];

    public ulong? AckedFeatures { get; private set; }

    public ConcurrentDictionary<int, (VringConfig Config, IVringNotifier Call)> Started { get; } = new();

    public ConcurrentDictionary<int, bool> Enabled { get; } = new();

    public int ResetCount;

    public int SetMemoryCount;

    /// <summary>Added to the start base to simulate progress; StopQueue returns base + this.</summary>
    public ushort Progress { get; set; } = 5;

    public bool ThrowOnStart { get; set; }

    /// <summary>Whether <see cref="TryTakeKick"/> takes the kick descriptors (as an epoll-driven device would).</summary>
    public bool TakeKicks { get; set; }

    /// <summary>The kick descriptors taken, by queue; dropped (disposed) on StopQueue, Reset and replacement.</summary>
    public ConcurrentDictionary<int, SafeHandle> TakenKicks { get; } = new();

    /// <summary>How many times each queue's kick was offered.</summary>
    public ConcurrentDictionary<int, int> KickOffers { get; } = new();

    /// <summary>Set while a kick runs on another thread than the one that started the queue.</summary>
    public ConcurrentBag<string> KickThreadNames { get; } = [];

    public GuestMemory? Memory
    {
        get
        {
            lock (_gate)
            {
                return _memory;
            }
        }
    }

    public IReadOnlyList<string> Calls
    {
        get
        {
            lock (_gate)
            {
                return [.. _calls];
            }
        }
    }

    public int Kicks(int index) => Volatile.Read(ref _kicks[index]);

    public void SetFeatures(ulong acked)
    {
        Record($"SetFeatures 0x{acked:x}");
        AckedFeatures = acked;
    }

    public bool ReadConfig(uint offset, Span<byte> destination)
    {
        Record($"ReadConfig {offset} {destination.Length}");
        if (offset > (uint)Config.Length || destination.Length > Config.Length - (int)offset)
        {
            return false;
        }

        Config.AsSpan((int)offset, destination.Length).CopyTo(destination);
        return true;
    }

    public bool WriteConfig(uint offset, ReadOnlySpan<byte> source, bool migration)
    {
        Record($"WriteConfig {offset} {source.Length} {migration}");
        return false;
    }

    public void SetMemory(GuestMemory? memory)
    {
        Record(memory is null ? "SetMemory null" : $"SetMemory {memory.Regions.Count}");
        Interlocked.Increment(ref SetMemoryCount);
        lock (_gate)
        {
            _memory?.Release();
            _memory = null;
            if (memory is not null && memory.TryAcquire())
            {
                _memory = memory;
            }
        }
    }

    public void StartQueue(int index, VringConfig config, IVringNotifier call)
    {
        Record($"StartQueue {index}");
        if (ThrowOnStart)
        {
            throw new InvalidOperationException("start refused by the test backend");
        }

        Assert.True(Started.TryAdd(index, (config, call)), $"queue {index} started twice");
        Enabled[index] = false;
    }

    public ushort StopQueue(int index)
    {
        Record($"StopQueue {index}");
        DropKick(index);
        Assert.True(Started.TryRemove(index, out var started), $"queue {index} stopped but not started");
        Enabled.TryRemove(index, out _);
        return (ushort)(started.Config.NextAvailableIndex + Progress);
    }

    public void SetQueueEnabled(int index, bool enabled)
    {
        Record($"SetQueueEnabled {index} {enabled}");
        Assert.True(Started.ContainsKey(index), $"enable of queue {index} that is not started");
        Enabled[index] = enabled;
    }

    public void Kick(int index)
    {
        KickThreadNames.Add(Thread.CurrentThread.Name ?? "?");
        Interlocked.Increment(ref _kicks[index]);
    }

    public bool TryTakeKick(int index, SafeHandle kick)
    {
        Record($"TryTakeKick {index}");
        Assert.True(Started.ContainsKey(index), $"kick of queue {index} offered before the queue started");
        KickOffers.AddOrUpdate(index, 1, (_, n) => n + 1);
        DropKick(index);
        if (TakeKicks)
        {
            TakenKicks[index] = kick;
        }

        return TakeKicks;
    }

    public void Reset()
    {
        Record("Reset");
        foreach (int index in TakenKicks.Keys)
        {
            DropKick(index);
        }

        Started.Clear();
        Enabled.Clear();
        AckedFeatures = null;
        lock (_gate)
        {
            _memory?.Release();
            _memory = null;
        }

        Interlocked.Increment(ref ResetCount);
    }

    private void DropKick(int index)
    {
        if (TakenKicks.TryRemove(index, out SafeHandle? kick))
        {
            kick.Dispose();
        }
    }

    private void Record(string call)
    {
        lock (_gate)
        {
            _calls.Add(call);
        }
    }
}
